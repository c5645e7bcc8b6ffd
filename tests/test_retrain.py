"""The winner retrained on train + val: exactly those rows, the selection run's epochs and rate cuts, both
results in best.json with the retrained one as the found model."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import default_settings, synthetic_dataset

from sigeo.data.store import ConcatSplit, Dataset, Split
from sigeo.errors import SigeoError
from sigeo.final import FinalSettings, Replay, retrain_final, select_best, train_final
from sigeo.io import TrainingOutputs
from sigeo.predict import load_model
from sigeo.space.choice import SMALL, sample_architecture
from sigeo.space.subnet import StandaloneNet
from sigeo.train import LR_MIN, clip_grad_norm, logloss, make_optimizer, make_scheduler, stepped_factor

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.mktemp("tiny"), rows=3000)


@pytest.fixture(scope="module")
def arch():
    return sample_architecture(np.random.default_rng(0), SMALL, 2)


def settings(**changes) -> FinalSettings:
    # stored order (shards=1): row counts by hand
    base = replace(default_settings().final, lr=0.01, batch_size=128, epochs=2, eval_batch_size=4096,
                   max_train_rows=None, checkpoint_minutes=60, log_every=1, seed=1, max_epochs=3,
                   shuffle_block_rows=None, use_layernorm=False, shards=1)  # fmt: skip
    return replace(base, **changes)


def numbered(rows: int, start: int) -> Split:
    """A split whose every array holds its rows' global index (row i of train+val has value i everywhere)."""
    values = np.arange(start, start + rows)
    return Split(values[:, None].repeat(2, 1).astype(np.float32), values[:, None].repeat(3, 1), values.astype(np.int8))


def test_concat_split_reads_train_then_val_across_the_boundary():
    both = ConcatSplit((numbered(5, 0), numbered(3, 5)))
    assert len(both) == 8
    dense, sparse, label = both.batch(3, 7)
    assert dense[:, 0].tolist() == [3, 4, 5, 6] and sparse[:, 2].tolist() == [3, 4, 5, 6]
    assert label.dtype == np.float32 and sparse.dtype == np.int64 and label.tolist() == [3, 4, 5, 6]
    assert both.batch(5, 8)[1][:, 0].tolist() == [5, 6, 7] and both.batch(0, 2)[1][:, 0].tolist() == [0, 1]
    assert both.take(np.array([0, 4, 5, 7]))[1][:, 1].tolist() == [0, 4, 5, 7]
    assert both.take(np.array([6]))[2].tolist() == [6]


def test_replay_reads_the_selection_runs_epochs_and_cuts():
    cosine = {"schedule": "cosine", "steps_per_epoch": 10, "steps": 20, "best": {"step": 20}, "curve": []}
    assert Replay.of(cosine, "m.json") == Replay(2.0)
    curve = [
        {"step": 5, "lr": 0.1, "lr_after": 0.1},  # new best
        {"step": 10, "lr": 0.1, "lr_after": 0.01},  # no new best: cut
        {"step": 15, "lr": 0.01, "lr_after": 0.01},  # the best
        {"step": 20, "lr": 0.01, "lr_after": 0.001},  # after the best: not repeated
    ]
    plateau = {"schedule": "plateau", "steps_per_epoch": 10, "steps": 20, "best": {"step": 15}, "curve": curve}
    replay = Replay.of(plateau, "m.json")
    assert replay == Replay(1.5, (1.0,))
    assert replay.steps(12) == (18, (12,))  # train+val has more rows: 12 steps an epoch
    old = {**plateau, "curve": [{k: v for k, v in c.items() if k != "lr_after"} for c in curve]}
    with pytest.raises(SigeoError, match=r"m\.json: its validation curve lacks 'lr_after'"):
        Replay.of(old, "m.json")


def test_stepped_factor_warms_up_then_cuts_at_the_given_steps():
    assert stepped_factor(0, 4, 0.01, (6, 9), 0.1) == pytest.approx(0.01)
    assert stepped_factor(2, 4, 0.01, (6, 9), 0.1) == pytest.approx(0.505)
    assert stepped_factor(5, 4, 0.01, (6, 9), 0.1) == 1.0
    assert stepped_factor(6, 4, 0.01, (6, 9), 0.1) == pytest.approx(0.1)
    assert stepped_factor(9, 4, 0.01, (6, 9), 0.1) == pytest.approx(0.01)
    assert stepped_factor(3, 0, 0.01, (), 0.1) == 1.0


def test_cosine_retraining_is_the_papers_loop_over_exactly_train_then_val(tiny_data, arch, tmp_path, one_thread):
    """The same weights as a plain loop over the rows of train followed by those of val, in file order, for the
    replayed epochs under warm-up + cosine (one shard: the stored order; the shards' order is
    tests/test_data_order.py's); the tested model's figures are the test split's."""
    s = settings(schedule="cosine")
    metrics = retrain_final(arch, tiny_data, s, Replay(2.0), TrainingOutputs.in_folder(tmp_path), CPU)
    dataset = Dataset.open(tiny_data)
    train, val = dataset.split("train"), dataset.split("val")
    rows = [np.concatenate([a, b]) for a, b in zip(train.batch(0, len(train)), val.batch(0, len(val)), strict=True)]
    steps = len(rows[2]) // s.batch_size
    assert steps > len(train) // s.batch_size  # val's rows add steps to each epoch
    torch.manual_seed(s.seed)
    model = StandaloneNet(arch, dataset.num_dense, dataset.table_sizes, use_layernorm=False)
    optimizer = make_optimizer(model, s.lr)
    scheduler = make_scheduler(optimizer, 2 * steps, int(2 * steps * 0.1))
    for step in range(2 * steps):
        start = (step % steps) * s.batch_size
        dense, sparse, label = (torch.from_numpy(a[start : start + s.batch_size]) for a in rows)
        optimizer.zero_grad()
        logloss(model(dense, sparse), label).backward()
        clip_grad_norm(list(model.parameters()))
        optimizer.step()
        scheduler.step()
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert metrics["trained_on"] == "train+val" and metrics["train_rows"] == len(train) + len(val)
    assert metrics["steps"] == 2 * steps and metrics["rows"] == 2 * steps * s.batch_size
    assert metrics["steps_per_epoch"] == steps and metrics["schedule"] == "cosine"
    assert metrics["val"] is None and metrics["test"]["rows"] == len(dataset.split("test"))
    assert metrics["curve"] == [] and metrics["status"] == "ok"


def test_plateau_retraining_repeats_the_best_epochs_and_the_rate_cuts(tiny_data, arch, tmp_path, one_thread):
    """A plateau run validated every 5 steps is replayed on train + val: steps = its best epochs × the longer
    epoch, its rate cut where the run's was (read back from the train log), capped train rows plus all of val."""
    s = settings(eval_every=5, max_epochs=2, patience=3, plateau_factor=0.5, max_train_rows=1280, use_layernorm=True)
    first = train_final(arch, tiny_data, s, TrainingOutputs.in_folder(tmp_path / "train"), CPU)
    cuts = [c["step"] for c in first["curve"] if c["lr_after"] < c["lr"] and c["step"] < first["best"]["step"]]
    assert cuts  # the run cut its rate before its best validation
    replay = Replay.of(first, "metrics.json")
    assert replay.epochs == first["best"]["step"] / 10 and replay.cuts == tuple(c / 10 for c in cuts)
    metrics = retrain_final(arch, tiny_data, s, replay, TrainingOutputs.in_folder(tmp_path / "trainval"), CPU)
    val_rows = len(Dataset.open(tiny_data).split("val"))
    per_epoch = (1280 + val_rows) // 128
    assert metrics["train_rows"] == 1280 + val_rows and metrics["steps_per_epoch"] == per_epoch
    assert metrics["schedule"] == "stepped" and metrics["steps"] == max(1, round(replay.epochs * per_epoch))
    cut_steps = [round(c / 10 * per_epoch) for c in cuts]
    assert metrics["replay"]["lr_cut_steps"] == cut_steps
    lrs = [float(line.split(",")[3]) for line in (tmp_path / "trainval/train_log.csv").read_text().splitlines()[1:]]
    warmup = int(per_epoch * 0.1)
    expected = [0.01 * stepped_factor(step, warmup, LR_MIN / 0.01, tuple(cut_steps), 0.5) for step in range(len(lrs))]
    assert lrs == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def selection(tiny_data, arch, tmp_path_factory):
    """Two finished candidates (rank 1 the better on val) and the winner retrained on train + val."""
    tmp_path = tmp_path_factory.mktemp("selection")
    s = settings(schedule="cosine", epochs=1, use_layernorm=True, max_train_rows=1280)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    other = sample_architecture(np.random.default_rng(3), SMALL, 2)
    metrics, archs = [], []
    for rank, (a, lr) in enumerate(((other, 1e-5), (arch, 0.01))):
        train_final(a, tiny_data, replace(s, lr=lr), TrainingOutputs.in_folder(tmp_path / str(rank)), CPU)
        metrics.append(tmp_path / str(rank) / "metrics.json")
        archs.append(tmp_path / f"{rank}.json")
        archs[-1].write_text(json.dumps(a.to_dict(0.0)))
    retrain_final(
        arch, tiny_data, replace(s, lr=0.01), Replay(1.0), TrainingOutputs.in_folder(tmp_path / "trainval"), CPU
    )
    torch.set_num_threads(threads)
    return metrics, archs, tmp_path / "trainval" / "metrics.json", tmp_path


def test_best_json_carries_both_results_and_names_the_retrained_model(selection, tiny_data, tmp_path):
    metrics, archs, retrained, folder = selection
    best = select_best(metrics, archs, retrained)
    train_only, trainval = (json.loads(p.read_text()) for p in (metrics[1], retrained))
    assert best["rank"] == 1 and best["found_model"] == "train+val"
    assert best["val"] == train_only["val"] and best["test"] == trainval["test"]
    assert best["model"] == str(folder / "trainval" / "model.pt")
    assert best["train_only"] == {"trained_on": "train", "val": train_only["val"], "test": train_only["test"],
                                  "model": str(folder / "1" / "model.pt"), "epochs": 1.0, "best_epoch": 1.0,
                                  "steps": train_only["steps"]}  # fmt: skip
    assert best["trainval"] == {"trained_on": "train+val", "status": "ok", "test": trainval["test"],
                                "model": str(folder / "trainval" / "model.pt"), "epochs": 1.0,
                                "steps": trainval["steps"], "rows": trainval["train_rows"]}  # fmt: skip
    assert best["test"] != best["train_only"]["test"]
    # predict uses the found model: the retrained weights
    (tmp_path / "best.json").write_text(json.dumps(best))
    model = load_model(tmp_path / "best.json", tiny_data / "meta.json")
    saved = torch.load(folder / "trainval" / "model.pt", weights_only=True)
    assert all(torch.equal(v, saved[k]) for k, v in model.net.state_dict().items())
    plain = select_best(metrics, archs)
    assert plain["found_model"] == "train" and plain["trainval"] is None and plain["test"] == train_only["test"]


def test_a_retraining_of_another_architecture_or_a_diverged_one(selection, tmp_path):
    metrics, archs, retrained, folder = selection
    with pytest.raises(SigeoError, match="retrained another architecture"):
        select_best(metrics[:1], archs[:1], retrained)
    diverged = tmp_path / "trainval" / "metrics.json"
    diverged.parent.mkdir()
    diverged.write_text(json.dumps({**json.loads(retrained.read_text()), "status": "diverged", "test": None}))
    best = select_best(metrics, archs, diverged)
    assert best["found_model"] == "train" and best["model"] == str(folder / "1" / "model.pt")
    assert best["trainval"]["status"] == "diverged"
