"""Digit data: the IDX reader on files written here, the MNIST folder loader, MNIST-1D generation."""

from __future__ import annotations

import gzip
import random
import struct

import numpy as np
import pytest

from sigeo.errors import DataError
from sigeo.study.mnist import MNIST_FILES, load_mnist, make_mnist1d, mnist_files, read_idx


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX by its spec: 0, 0, type code (0x08 = unsigned byte), ndim, big-endian uint32 dims, data."""
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


IMAGES = np.arange(3 * 2 * 2, dtype=np.uint8).reshape(3, 2, 2) * 20
LABELS = np.array([7, 0, 9], dtype=np.uint8)


def test_read_idx_plain_and_gzip(tmp_path):
    (tmp_path / "images").write_bytes(idx_bytes(IMAGES))
    (tmp_path / "labels.gz").write_bytes(gzip.compress(idx_bytes(LABELS)))
    images = read_idx(tmp_path / "images")
    assert images.shape == (3, 2, 2) and images.dtype == np.uint8 and images[2, 1, 1] == 220
    assert read_idx(tmp_path / "labels.gz").tolist() == [7, 0, 9]


def test_read_idx_big_endian_ints(tmp_path):
    data = struct.pack(">BBBB", 0, 0, 0x0C, 1) + struct.pack(">I", 2) + struct.pack(">ii", 258, -1)
    (tmp_path / "ints").write_bytes(data)
    assert read_idx(tmp_path / "ints").tolist() == [258, -1]


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(idx_bytes(IMAGES)[:-1])
    with pytest.raises(DataError, match=r"short: IDX header promises 28 bytes for shape \(3, 2, 2\), file has 27"):
        read_idx(tmp_path / "short")


def test_load_mnist_folder(tmp_path):
    for key, stem in MNIST_FILES.items():
        data = idx_bytes(IMAGES if key.startswith("x") else LABELS)
        if key.endswith("test"):
            (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (tmp_path / stem).write_bytes(data)
    digits = load_mnist(tmp_path)
    assert digits.x.shape == (3, 4) and digits.x.dtype == np.float32
    assert digits.x[1].tolist() == pytest.approx([80 / 255, 100 / 255, 120 / 255, 140 / 255])
    assert digits.y.tolist() == [7, 0, 9] and digits.y.dtype == np.int64 and digits.num_classes == 10
    assert np.array_equal(digits.x_test, digits.x)


def test_missing_mnist_files_are_named(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(IMAGES))
    with pytest.raises(DataError, match="missing train-labels-idx1-ubyte, t10k-images"):
        mnist_files(tmp_path)


def test_mnist1d_split_seed_and_global_state():
    np.random.seed(11)
    random.seed(11)
    a = make_mnist1d(seed=3, num_samples=700)
    assert (np.random.rand(), random.random()) == (np.random.RandomState(11).rand(), random.Random(11).random())
    assert a.x.shape == (600, 40) and a.x_test.shape == (100, 40) and a.x.dtype == np.float32
    assert set(np.unique(a.y)) == set(range(10))
    b = make_mnist1d(seed=3, num_samples=700)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(make_mnist1d(seed=4, num_samples=700).x, a.x)
