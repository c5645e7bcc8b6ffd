"""Warm-up: data budget and schedule, the validation panel, the learned flag, resume with a curve."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import default_settings, synthetic_dataset
from sklearn.metrics import log_loss

import sigeo.warmup as warmup
from sigeo.data.store import Dataset, Split
from sigeo.space.choice import SMALL, full_path, sample_architecture
from sigeo.train import LR_MIN, Checkpointer, TrainSettings, base_rate_logloss, evaluate, to_device, train_loop
from sigeo.warmup import (
    WarmupSettings,
    build_supernet,
    epoch_batches,
    learned,
    panel_architectures,
    panel_metrics,
    stream_batches,
    supernet_outputs,
    warm_up,
    warmup_steps,
)

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.mktemp("tiny"), rows=12000)


def settings(**changes) -> WarmupSettings:
    base = replace(default_settings().warmup, batch_size=256, lr=0.01, strategy="default",
                   anypath_choice="binomial-0.5", use_layernorm=True, full_path_steps=0, weight_sharing="slice",
                   eval_batch_size=1024, eval_rows=None, checkpoint_minutes=60, log_every=1, num_blocks=2, seed=3,
                   epochs=2.0, lr_floor=0.1, full_path_min=0.0, panel_size=4, eval_every=0)  # fmt: skip
    return replace(base, **changes)


def test_a_level_is_a_fraction_of_the_data_budget():
    # 9,600 rows in 8 shards of 1,200 rows, 4 whole batches of 256 each: 32 batches per pass
    rows = Split(np.zeros((9600, 1)), np.zeros((9600, 1)), np.zeros(9600))
    assert len(epoch_batches(rows, 256, 8)) == 32
    assert len(epoch_batches(rows, 256, 1)) == 37  # stored order: floor(9600 / 256)
    assert warmup_steps(1.0, 32, 1.0) == 32
    assert warmup_steps(1.0, 32, 5.0) == 160
    assert warmup_steps(0.1, 37, 5.0) == 18  # floor(0.1 * 5 * 37) = floor(18.5)
    assert warmup_steps(0.0, 32, 5.0) == 0


def row_split(rows: int) -> Split:
    """A split whose label is the row's index, so a batch says which rows it read."""
    index = np.arange(rows)
    return Split(index[:, None].astype(np.float32), index[:, None], index.astype(np.float32))


def test_the_stream_reads_round_robin_over_shards_and_resumes_mid_pass():
    """20 rows in 3 shards of 7, 7 and 6 rows, batches of 3: two whole batches per shard (rows 6, 13
    are each shard's remainder), taken shard by shard; the pass then starts over."""
    split = row_split(20)
    ranges = epoch_batches(split, 3, 3)
    one_pass = [[0, 1, 2], [7, 8, 9], [14, 15, 16], [3, 4, 5], [10, 11, 12], [17, 18, 19]]
    fresh = stream_batches(split, ranges, 0)
    assert [next(fresh)[2].tolist() for _ in range(8)] == one_pass + one_pass[:2]
    resumed = stream_batches(split, ranges, 6 + 4)  # step 4 of the second pass
    assert [next(resumed)[2].tolist() for _ in range(3)] == [one_pass[4], one_pass[5], one_pass[0]]


def test_the_first_steps_of_a_level_span_the_whole_split(tiny_data):
    """The reference's first 1 %: the first batch of every shard, not the first rows of the split."""
    train = Dataset.open(tiny_data).split("train")
    ranges = epoch_batches(train, 256, 8)
    shard = -(-len(train) // 8)
    first = [next(stream_batches(train, ranges, step))[2] for step in range(8)]
    for k, labels in enumerate(first):
        np.testing.assert_array_equal(labels, train.label[k * shard : k * shard + 256])


def test_a_split_without_a_whole_batch_per_pass_is_refused():
    with pytest.raises(ValueError, match="hold no whole batch of 4"):
        epoch_batches(row_split(20), 4, 8)  # 8 shards of at most 3 rows


def test_warmup_schedule_ends_at_the_floor_not_at_1e8(tiny_data, tmp_path):
    """The logged learning rate of every step against the formula worked out by hand."""
    s = settings(lr=0.02, lr_floor=0.25, epochs=1.0, shards=1)
    metrics = warm_up(tiny_data, "small", 0.6, s, supernet_outputs(tmp_path), CPU)
    assert metrics["steps"] == 22  # floor(0.6 * 1 epoch * 37 whole batches of 256 in stored order)
    low = 0.02 * 0.25  # 2 steps of linear warm-up (22 // 10), then 20 of cosine down to the floor
    with open(tmp_path / "train_log.csv") as fh:
        lrs = [float(row["lr"]) for row in csv.DictReader(fh)]
    assert len(lrs) == 22
    assert lrs[0] == pytest.approx(LR_MIN)
    assert lrs[1] == pytest.approx(LR_MIN + (0.02 - LR_MIN) / 2)
    assert lrs[2] == pytest.approx(0.02)
    assert lrs[12] == pytest.approx((0.02 + low) / 2)  # halfway through the cosine: cos(pi / 2) = 0
    assert lrs[21] == pytest.approx(low + (0.02 - low) * (1 + math.cos(math.pi * 19 / 20)) / 2)
    assert min(lrs[2:]) > low


def test_panel_is_seeded_and_drawn_as_search_candidates():
    a, b = panel_architectures(SMALL, 3, 5, seed=11), panel_architectures(SMALL, 3, 5, seed=11)
    assert [p.hash() for p in a] == [p.hash() for p in b]
    assert [p.hash() for p in panel_architectures(SMALL, 3, 5, seed=12)] != [p.hash() for p in a]
    assert all(p.is_architecture() for p in a)
    rng = np.random.default_rng([11, warmup.PANEL_STREAM])
    assert a[0].hash() == sample_architecture(rng, SMALL, 3).hash()


def test_planted_untrained_supernet_scores_the_base_rate_and_is_flagged(tiny_data):
    """A supernet planted to predict the validation positive rate everywhere has learned nothing."""
    data = Dataset.open(tiny_data)
    val = data.split("val")
    net = build_supernet(SMALL, data, settings())
    rate = float(np.mean(val.label))
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.fill_(math.log(rate / (1 - rate)))
    paths = panel_architectures(SMALL, 2, 4, seed=3)
    panel = panel_metrics(net, paths, val, 1024, CPU)
    base = base_rate_logloss(rate)
    assert panel["size"] == 4
    assert panel["logloss"] == pytest.approx([base] * 4, rel=1e-9)
    assert panel["auc_mean"] == pytest.approx(0.5)
    assert not learned(panel["logloss_mean"], panel["logloss_mean"], base)


def test_panel_metrics_match_an_independent_log_loss(tiny_data):
    data = Dataset.open(tiny_data)
    val = data.split("val")
    net = build_supernet(SMALL, data, settings())
    paths = panel_architectures(SMALL, 2, 3, seed=3)
    panel = panel_metrics(net, paths, val, 700, CPU)
    dense, ids, label = (torch.from_numpy(a) for a in val.batch(0, len(val)))
    with torch.no_grad():
        oracle = [log_loss(label.numpy(), torch.sigmoid(net(dense, ids, p).double()).numpy()) for p in paths]
    assert panel["logloss"] == pytest.approx(oracle, rel=1e-6)
    assert panel["logloss_mean"] == pytest.approx(np.mean(oracle), rel=1e-6)


def test_level_zero_is_flagged_in_metrics_and_log(tiny_data, tmp_path, caplog):
    caplog.set_level("INFO", logger="sigeo.warmup")
    metrics = warm_up(tiny_data, "small", 0.0, settings(), supernet_outputs(tmp_path), CPU)
    rate = json.loads((tiny_data / "meta.json").read_text())["positive_rate"]["val"]
    base = base_rate_logloss(rate)
    assert metrics["base_rate_logloss"] == pytest.approx(base)
    assert metrics["learned"] is False and metrics["steps"] == 0
    assert metrics["val_panel"]["size"] == 4
    assert metrics["val_panel"]["logloss_mean"] > base
    assert metrics["panel_gap_to_base_rate"] == pytest.approx(base - metrics["val_panel"]["logloss_mean"])
    assert metrics["full_path_gap_to_base_rate"] == pytest.approx(base - metrics["val_full_path"]["logloss"])
    assert "learned = false" in caplog.text


def test_a_trained_supernet_clears_the_flag(tiny_data):
    """Trained on its panel and full path in turn, the supernet beats the base rate on both."""
    data = Dataset.open(tiny_data)
    net = build_supernet(SMALL, data, settings())
    paths = [*panel_architectures(SMALL, 2, 2, seed=3), full_path(SMALL, 2)]
    train = data.split("train")
    ranges = epoch_batches(train, 256, 8)
    train_loop(net, lambda b, step: net(b[0], b[1], paths[step % 3]),
               lambda first: (to_device(b, CPU) for b in stream_batches(train, ranges, first)), 180,
               TrainSettings(0.05, 256, lr_min=0.005), CPU, Checkpointer(Path("unused"), math.inf))  # fmt: skip
    val = data.split("val")
    panel = panel_metrics(net, paths[:2], val, 1024, CPU)
    full = evaluate(lambda b: net(b[0], b[1], paths[2]), val, 1024, CPU)
    base = base_rate_logloss(float(np.mean(val.label)))
    assert max(panel["logloss"]) < base - 0.005 and full["logloss"] < base - 0.005
    assert learned(full["logloss"], panel["logloss_mean"], base)
    assert not learned(full["logloss"], base, base) and not learned(base, panel["logloss_mean"], base)
    # a gain below the margin is rounding, not learning
    assert not learned(base - warmup.LEARNED_MARGIN / 2, panel["logloss_mean"], base)


def test_interrupted_warmup_with_a_curve_resumes_to_the_same_supernet_and_curve(tiny_data, tmp_path, monkeypatch):
    s = settings(eval_every=5, eval_rows=500, checkpoint_minutes=1e-9, epochs=1.0)
    whole = warm_up(tiny_data, "small", 0.6, s, supernet_outputs(tmp_path / "whole"), CPU)
    assert [r["step"] for r in whole["val_curve"]] == [5, 10, 15, 19]  # floor(0.6 * 32) steps

    calls = {"n": 0}
    real = warmup.panel_metrics

    def crash_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed during the validation at step 15
        return real(*args, **kwargs)

    monkeypatch.setattr(warmup, "panel_metrics", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        warm_up(tiny_data, "small", 0.6, s, supernet_outputs(tmp_path / "killed"), CPU)
    monkeypatch.setattr(warmup, "panel_metrics", real)
    saved = torch.load(tmp_path / "killed" / "resume.pt", weights_only=True)
    assert saved["loop"]["step"] == 14
    resumed = warm_up(tiny_data, "small", 0.6, s, supernet_outputs(tmp_path / "killed"), CPU)
    assert resumed["val_curve"] == whole["val_curve"]
    a = torch.load(tmp_path / "whole" / "supernet.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "supernet.pt", weights_only=True)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_full_path_floor_trains_the_full_path_at_any_step():
    from sigeo.space.sampler import PathSampler

    always = PathSampler(SMALL, 3, "default", "binomial-0.5", 0, seed=1, full_path_min=1.0)
    assert all(always.sample(step) == full_path(SMALL, 3) for step in (0, 5, 10_000))
    assert always.sample() != full_path(SMALL, 3)  # evaluation draws never mix
    share = PathSampler(SMALL, 3, "default", "binomial-0.5", 0, seed=2, full_path_min=0.25)
    hits = sum(share.sample(t) == full_path(SMALL, 3) for t in range(2000))
    assert 0.22 < hits / 2000 < 0.28  # binomial sd 0.0097: a 3-sigma band
