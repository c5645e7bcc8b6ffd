"""The order batches are read in: round-robin over contiguous shards, as the reference's loader.

Warm-up prefixes are covered in test_warmup.py; here the order itself, the batches the searches
score every candidate on, and the final training's order without the block shuffle.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import default_settings

from sigeo.data.store import Split, batch_ranges
from sigeo.errors import ConfigError
from sigeo.final import FinalSettings, training_batches
from sigeo.search import ProbeData, scoring_batches


def row_split(rows: int) -> Split:
    """A split whose label is the row's index, so a batch says which rows it read."""
    index = np.arange(rows)
    return Split(index[:, None].astype(np.float32), index[:, None], index.astype(np.float32))


def rows_of(batches) -> list[list[int]]:
    return [[int(v) for v in batch[2]] for batch in batches]


def reference_loader(rows: int, shards: int, batch_size: int, drop_last: bool) -> list[list[int]]:
    """An independent model of the reference: each shard file batched on its own (its last batch
    partial), one worker per shard, the loader taking one batch from each worker in turn and passing
    over a worker that has run out."""
    per_shard = -(-rows // shards)
    streams = []
    for k in range(shards):
        shard = list(range(rows))[k * per_shard : (k + 1) * per_shard]
        batches = [shard[i : i + batch_size] for i in range(0, len(shard), batch_size)]
        streams.append([b for b in batches if len(b) == batch_size or not drop_last])
    turns = itertools.zip_longest(*streams)
    return [batch for turn in turns for batch in turn if batch is not None]


def ranges_rows(ranges: np.ndarray) -> list[list[int]]:
    return [list(range(start, stop)) for start, stop in ranges.tolist()]


def test_batches_by_hand():
    # 9 rows, 2 shards of 5 and 4 rows, batches of 2: shard 0 has three batches (the last of one
    # row), shard 1 two, so the last turn is shard 0's alone
    assert batch_ranges(9, 2, 2).tolist() == [[0, 2], [5, 7], [2, 4], [7, 9], [4, 5]]
    assert batch_ranges(9, 2, 2, drop_last=True).tolist() == [[0, 2], [5, 7], [2, 4], [7, 9]]
    assert batch_ranges(9, 2, 1).tolist() == [[0, 2], [2, 4], [4, 6], [6, 8], [8, 9]]  # stored order
    # 5 rows over 8 shards: shards of one row, the last three empty
    assert batch_ranges(5, 4, 8).tolist() == [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]
    assert batch_ranges(0, 4, 8).shape == (0, 2)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize(("rows", "shards", "batch_size"), [(100, 8, 3), (37, 8, 5), (64, 8, 8), (23, 3, 4),
                                                            (10, 4, 7), (1000, 7, 33), (12, 1, 5)])  # fmt: skip
def test_batches_match_a_model_of_the_reference_loader(rows, shards, batch_size, drop_last):
    assert ranges_rows(batch_ranges(rows, batch_size, shards, drop_last)) == reference_loader(
        rows, shards, batch_size, drop_last
    )


def data(**changes) -> ProbeData:
    base = {"probe_batches": 3, "probe_batch_size": 4, "finetune_steps": 10, "finetune_lr": 0.04,
            "eval_batches": 5, "eval_batch_size": 2, "shards": 4}  # fmt: skip
    return ProbeData(**{**base, **changes})


def test_every_candidate_is_scored_on_the_first_batches_of_each_split_in_shard_order():
    # train: 40 rows, 4 shards of 10, two whole batches of 4 each (rows 8-9 of a shard left over)
    # val: 10 rows, 4 shards of 3, 3, 3 and 1 rows, batches of 2 (each shard's last one partial)
    probe, finetune, evaluation = scoring_batches(row_split(40), row_split(10), data(), oneshot=True)
    assert rows_of(probe) == [[0, 1, 2, 3], [10, 11, 12, 13], [20, 21, 22, 23]]
    assert rows_of(finetune) == [[0, 1, 2, 3], [10, 11, 12, 13], [20, 21, 22, 23], [30, 31, 32, 33],
                                 [4, 5, 6, 7], [14, 15, 16, 17], [24, 25, 26, 27], [34, 35, 36, 37]]  # fmt: skip
    assert rows_of(evaluation) == [[0, 1], [3, 4], [6, 7], [9], [2]]
    assert len(finetune) == 8  # all the whole batches there are, fewer than finetune_steps


def test_without_oneshot_only_the_probe_batches_are_read():
    probe, finetune, evaluation = scoring_batches(row_split(40), row_split(10), data(shards=1), oneshot=False)
    assert rows_of(probe) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert finetune == [] and evaluation == []


def test_too_few_whole_batches_for_the_probe_is_refused():
    with pytest.raises(ConfigError, match=r"proxy.probe_batches \(3\) exceeds the 2 whole batches"):
        scoring_batches(row_split(10), row_split(10), data(shards=2), oneshot=False)  # one batch per shard of 5


def final_settings(**changes) -> FinalSettings:
    base = replace(default_settings().final, lr=0.1, batch_size=2, epochs=2, eval_batch_size=8, max_train_rows=None,
                   checkpoint_minutes=60, log_every=1, seed=0, schedule="cosine")  # fmt: skip
    return replace(base, **changes)


def test_final_training_without_the_shuffle_reads_the_papers_order_every_epoch():
    # 9 rows, 2 shards of 5 and 4 rows, whole batches of 2: [0, 1], [5, 6], [2, 3], [7, 8] per epoch
    settings = final_settings(shuffle_block_rows=None, shards=2)
    batches = training_batches(row_split(9), settings, 4, 8, torch.device("cpu"))
    one_epoch = [[0, 1], [5, 6], [2, 3], [7, 8]]
    assert [b[2].int().tolist() for b in batches(0)] == one_epoch + one_epoch
    assert [b[2].int().tolist() for b in batches(5)] == one_epoch[1:]  # resumed in the second epoch


def test_final_training_shuffles_by_default():
    settings = final_settings()
    assert settings.shuffle_block_rows == 8192
    batches = training_batches(row_split(20), settings, 10, 10, torch.device("cpu"))
    rows = [int(row) for batch in batches(0) for row in batch[2]]
    assert sorted(rows) == list(range(20)) and rows != list(range(20))
