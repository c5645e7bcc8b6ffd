"""The prepared-data store: per split ``dense.npy``, ``sparse.npy``, ``label.npy`` and ``meta.json``.

Rows are appended while streaming, so the final row count is unknown when a file is opened.
``NpyAppender`` reserves a fixed-size ``.npy`` header, appends raw rows, and rewrites the header
with the true shape on close: no second copy of a multi-GB split, and the result is a standard
``.npy`` that ``np.load(mmap_mode="r")`` maps without reading.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import META_FILE, read_json

SPLITS = ("train", "val", "test")
#: The arrays of a split, each ``<root>/<split>/<part>.npy`` (:func:`array_path`).
PARTS = ("dense", "sparse", "label")
_HEADER_BYTES = 128  # magic (6) + version (2) + length (2) + a dict that always fits in 118 bytes


class NpyAppender:
    """Append rows of a fixed dtype and row shape to a ``.npy`` file of unknown final length."""

    def __init__(self, path: str | os.PathLike, dtype: np.dtype | str, row_shape: tuple[int, ...]) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(row_shape)
        self.rows = 0
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._fh.write(self._header(0))

    def _header(self, rows: int) -> bytes:
        shape = (rows, *self.row_shape)
        text = repr({"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape})
        body_len = _HEADER_BYTES - 10
        body = text.encode("latin1").ljust(body_len - 1) + b"\n"
        if len(body) != body_len:
            raise ValueError(f"npy header too long for {shape}")
        return np.lib.format.magic(1, 0) + body_len.to_bytes(2, "little") + body

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"{self.path}: row shape {rows.shape[1:]} != {self.row_shape}")
        self._fh.write(rows.tobytes())
        self.rows += rows.shape[0]

    def close(self) -> None:
        self._fh.seek(0)
        self._fh.write(self._header(self.rows))
        self._fh.close()


@dataclass(frozen=True)
class Split:
    """One memory-mapped split; batches are contiguous row ranges."""

    dense: np.ndarray
    sparse: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def head(self, rows: int) -> Split:
        """The first ``rows`` rows in stored order (``final.max_train_rows``, ``warmup.eval_rows``)."""
        return Split(self.dense[:rows], self.sparse[:rows], self.label[:rows])

    def batch(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``start:stop`` in memory: ``(dense float32 [B,D], sparse int64 [B,C], label float32 [B])``."""
        return (
            np.array(self.dense[start:stop], dtype=np.float32),
            np.array(self.sparse[start:stop], dtype=np.int64),
            np.array(self.label[start:stop], dtype=np.float32),
        )

    def batches(
        self, batch_size: int, start_batch: int = 0, drop_last: bool = False
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        n = len(self)
        stop = n - n % batch_size if drop_last else n
        for start in range(start_batch * batch_size, stop, batch_size):
            yield self.batch(start, min(start + batch_size, n))

    def read(self, ranges: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The batches of ``ranges`` (rows of ``(start, stop)``, e.g. from :func:`batch_ranges`), in order."""
        for start, stop in ranges:
            yield self.batch(int(start), int(stop))

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The given rows (ascending, so reads of the memory map stay sequential) in memory, as :meth:`batch`."""
        return (
            np.asarray(self.dense[rows], dtype=np.float32),
            np.asarray(self.sparse[rows], dtype=np.int64),
            np.asarray(self.label[rows], dtype=np.float32),
        )


@dataclass(frozen=True)
class ConcatSplit:
    """Splits read one after the other as one, without copying a row: train followed by val is the
    training data of the final retraining, which has no validation left.

    Row ``i`` is row ``i`` of the first part, then the rows of the second part follow, and so on.
    """

    parts: tuple[Split, ...]

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def _offsets(self) -> np.ndarray:
        return np.cumsum([0, *(len(part) for part in self.parts)])

    def batch(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``start:stop`` across the parts, as :meth:`Split.batch`."""
        offsets = self._offsets()
        pieces = [
            part.batch(max(start - low, 0), min(stop, high) - low)
            for part, low, high in zip(self.parts, offsets[:-1], offsets[1:], strict=True)
            if start < high and stop > low
        ]
        return _concatenate(pieces)

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The given rows (ascending) across the parts, as :meth:`Split.take`."""
        offsets = self._offsets()
        bounds = np.searchsorted(rows, offsets)
        pieces = [part.take(rows[bounds[i] : bounds[i + 1]] - offsets[i]) for i, part in enumerate(self.parts)]
        return _concatenate(pieces)


def _concatenate(pieces: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.concatenate(arrays) for arrays in zip(*pieces, strict=True))  # type: ignore[return-value]


def batch_ranges(rows: int, batch_size: int, shards: int, drop_last: bool = False) -> np.ndarray:
    """``(start, stop)`` of each batch of a split of ``rows`` rows, in the order the reference's loader
    yields them: the split cut into ``shards`` contiguous shards of ``ceil(rows / shards)`` rows (the
    last ones shorter, possibly empty), each shard cut into batches from its start (its last batch
    partial, or dropped with ``drop_last``), and the batches taken round-robin over the shards: batch 0
    of every shard, then batch 1 of every shard, and so on, a shard that has run out skipped.

    A split keeps the raw (time) order, so the first batches sample the whole period rather than its
    first hours, and every batch is still one contiguous slice of the memory-mapped files.
    ``shards=1`` is the stored order.
    """
    if batch_size < 1 or shards < 1:
        raise ValueError(f"batch_size ({batch_size}) and shards ({shards}) must be positive")
    shard_rows = -(-rows // shards)
    lows = np.minimum(np.arange(shards) * shard_rows, rows)
    highs = np.minimum(lows + shard_rows, rows)
    starts, shard_of, index = [], [], []
    for k, (low, high) in enumerate(zip(lows, highs, strict=True)):
        stop = high - (high - low) % batch_size if drop_last else high
        begin = np.arange(low, stop, batch_size)
        starts.append(begin)
        shard_of.append(np.full(len(begin), k))
        index.append(np.arange(len(begin)))
    starts_all, shard_all, index_all = (np.concatenate(parts) for parts in (starts, shard_of, index))
    order = np.lexsort((shard_all, index_all))  # by batch index within the shard, then by shard
    begin = starts_all[order]
    return np.stack([begin, np.minimum(begin + batch_size, highs[shard_all[order]])], axis=1).astype(np.int64)


def array_path(root: str | os.PathLike, split: str, part: str) -> Path:
    """Where a prepared data set in ``root`` keeps array ``part`` (one of :data:`PARTS`) of ``split``."""
    return Path(root) / split / f"{part}.npy"


@dataclass(frozen=True)
class Dataset:
    """A prepared dataset folder: its metadata and its memory-mapped splits."""

    root: Path
    meta: dict

    @classmethod
    def open(cls, root: str | os.PathLike) -> Dataset:
        root = Path(root)
        return cls(root=root, meta=read_json(root / META_FILE))

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return Split(*(np.load(array_path(self.root, name, part), mmap_mode="r") for part in PARTS))

    @property
    def table_sizes(self) -> list[int]:
        return list(self.meta["table_sizes"])

    @property
    def num_dense(self) -> int:
        return len(self.meta["dense_features"])

    @property
    def num_sparse(self) -> int:
        return len(self.meta["sparse_features"])
