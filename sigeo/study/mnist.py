"""Digit data for the theory study: MNIST from its IDX files, or MNIST-1D generated locally.

MNIST is read with numpy from the four IDX files (plain or gzip), so no torchvision and no download.
Without MNIST, MNIST-1D (Greydanus 2020) stands in: 70,000 one-dimensional digit signals generated
on the spot by the ``mnist1d`` package, split 60,000/10,000 like MNIST so an epoch has the same
469 batches of 128 and the warm-up levels map to the same batch indices.
"""

from __future__ import annotations

import gzip
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import atomic_path

MNIST_FILES = {
    "x": "train-images-idx3-ubyte",
    "y": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Digits:
    """Train and test splits: ``x`` [N, D] float32 features, ``y`` [N] int64 labels."""

    name: str
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(max(self.y.max(), self.y_test.max())) + 1


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` is decompressed); the header's type and shape must match its size."""
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = header + dtype.itemsize * int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(f"{path}: IDX header promises {expected} bytes for shape {shape}, file has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def mnist_files(folder: str | os.PathLike) -> dict[str, str]:
    """The four MNIST IDX files in ``folder`` (each plain or ``.gz``), keyed x, y, x_test, y_test."""
    found, missing = {}, []
    for key, stem in MNIST_FILES.items():
        candidates = [Path(folder) / stem, Path(folder) / f"{stem}.gz"]
        present = [str(p) for p in candidates if p.is_file()]
        if present:
            found[key] = present[0]
        else:
            missing.append(stem)
    if missing:
        raise DataError(f"theory.mnist_dir {folder}: missing {', '.join(missing)} (plain or .gz)")
    return found


def load_mnist(folder: str | os.PathLike) -> Digits:
    """MNIST with pixels scaled to [0, 1] (torchvision's ``ToTensor``, as the reference used)."""
    arrays = {key: read_idx(path) for key, path in mnist_files(folder).items()}
    return Digits(
        name="mnist",
        x=(arrays["x"].reshape(len(arrays["x"]), -1) / np.float32(255)).astype(np.float32),
        y=arrays["y"].astype(np.int64),
        x_test=(arrays["x_test"].reshape(len(arrays["x_test"]), -1) / np.float32(255)).astype(np.float32),
        y_test=arrays["y_test"].astype(np.int64),
    )


def make_mnist1d(seed: int, num_samples: int = 70_000) -> Digits:
    """MNIST-1D with MNIST's 6:1 train/test split, generated locally (no network) from ``seed``.

    ``mnist1d`` reseeds Python's and numpy's global generators; their states are restored afterwards.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.train_split = 6 / 7
    args.seed = seed
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return Digits(
        name="mnist1d",
        x=data["x"].astype(np.float32),
        y=data["y"].astype(np.int64),
        x_test=data["x_test"].astype(np.float32),
        y_test=data["y_test"].astype(np.int64),
    )


def save_digits(path: str | os.PathLike, digits: Digits) -> None:
    with atomic_path(path, ".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, name=digits.name, x=digits.x, y=digits.y, x_test=digits.x_test, y_test=digits.y_test)


def load_digits(path: str | os.PathLike) -> Digits:
    with np.load(path) as data:
        return Digits(name=str(data["name"]), **{key: data[key] for key in MNIST_FILES})
