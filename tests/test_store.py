"""The streaming .npy writer and the memory-mapped split reader."""

import numpy as np

from sigeo.data.store import NpyAppender, Split


def test_appender_writes_a_standard_npy(tmp_path):
    path = tmp_path / "a.npy"
    out = NpyAppender(path, np.int32, (3,))
    out.append(np.arange(6).reshape(2, 3))
    out.append(np.arange(6, 9).reshape(1, 3))
    out.append(np.empty((0, 3)))
    out.close()
    got = np.load(path, mmap_mode="r")
    assert isinstance(got, np.memmap)
    np.testing.assert_array_equal(got, np.arange(9).reshape(3, 3))
    assert got.dtype == np.int32


def test_split_batches_are_contiguous_and_typed():
    split = Split(np.ones((10, 2), np.float32), np.arange(30, dtype=np.int32).reshape(10, 3), np.arange(10) % 2)
    batches = list(split.batches(4))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert [b[0].shape[0] for b in split.batches(4, drop_last=True)] == [4, 4]
    _, sparse, label = batches[1]
    assert sparse.dtype == np.int64 and sparse[0, 0] == 12
    assert label.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert len(split.head(3)) == 3
