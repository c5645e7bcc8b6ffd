"""Final training: the paper's recipe unchanged, training to convergence, kept weights, divergence, selection."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import default_settings, synthetic_dataset

import sigeo.final
from sigeo.data.store import Dataset
from sigeo.errors import SigeoError
from sigeo.final import FinalSettings, epoch_order, select_best, train_final, train_model
from sigeo.io import TrainingOutputs
from sigeo.space.choice import SMALL, sample_architecture
from sigeo.space.subnet import StandaloneNet, standalone_size
from sigeo.train import base_rate_logloss, clip_grad_norm, evaluate, logloss, make_optimizer, make_scheduler

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.mktemp("tiny"), rows=6000)


@pytest.fixture(scope="module")
def arch():
    return sample_architecture(np.random.default_rng(0), SMALL, 2)


def settings(**changes) -> FinalSettings:
    base = replace(default_settings().final, lr=0.01, batch_size=256, epochs=2, eval_batch_size=4096,
                   max_train_rows=None, checkpoint_minutes=60, log_every=5, seed=1, max_epochs=3,
                   shuffle_block_rows=1000)  # fmt: skip
    return replace(base, **changes)


@pytest.mark.parametrize("eps", [0.01, 1e-4], ids=["original-eps", "demo-eps"])
def test_cosine_in_shard_order_without_layer_norm_is_the_papers_training(tiny_data, arch, tmp_path, one_thread, eps):
    """The same weights as a plain loop of the original recipe: seeded init, whole batches taken round-robin
    over 8 contiguous shards, warm-up + cosine over every step, clipping at 5, last weights; Adagrad's eps
    the setting's (the original's 0.01, and the demo's 1e-4, whose weights differ from it)."""
    s = settings(schedule="cosine", shuffle_block_rows=None, use_layernorm=False, adagrad_eps=eps)
    metrics = train_final(arch, tiny_data, s, TrainingOutputs.in_folder(tmp_path), CPU)
    dataset = Dataset.open(tiny_data)
    torch.manual_seed(s.seed)
    model = StandaloneNet(arch, dataset.num_dense, dataset.table_sizes)
    train = dataset.split("train")
    shard = -(-len(train) // 8)
    turns = range(shard // s.batch_size + 1)
    starts = [k * shard + j * s.batch_size for j in turns for k in range(8)
              if k * shard + (j + 1) * s.batch_size <= min((k + 1) * shard, len(train))]  # fmt: skip
    steps = len(starts)
    assert steps == 8 * (shard // s.batch_size) < len(train) // s.batch_size  # a shard's remainder is not read
    optimizer = make_optimizer(model, s.lr, eps)
    scheduler = make_scheduler(optimizer, steps * s.epochs, int(steps * s.epochs * 0.1))
    for step in range(steps * s.epochs):
        start = starts[step % steps]
        dense, sparse, label = (torch.from_numpy(a) for a in train.batch(start, start + s.batch_size))
        optimizer.zero_grad()
        logloss(model(dense, sparse), label).backward()
        clip_grad_norm(list(model.parameters()))
        optimizer.step()
        scheduler.step()
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved.keys() == model.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert optimizer.param_groups[0]["eps"] == eps
    assert metrics["status"] == "ok" and metrics["stop_reason"] == "schedule_end" and metrics["steps"] == 2 * steps
    assert metrics["net"] == {"use_layernorm": False} and metrics["best"]["step"] == 2 * steps
    size = standalone_size(arch, dataset.num_dense, dataset.num_sparse)
    assert metrics["flops_2x_all_blocks"] == size["flops_2x_all_blocks"]
    assert metrics["mflops_nasrec"] == size["mflops_nasrec"] < metrics["flops_2x_all_blocks"] / 2e6


def test_model_pt_reloads_to_the_same_predictions_and_metrics(tiny_data, arch, tmp_path, one_thread):
    dataset = Dataset.open(tiny_data)
    s = settings()
    model = sigeo.final.build_standalone(arch, dataset, s)
    metrics = train_model(model, tiny_data, s, TrainingOutputs.in_folder(tmp_path), CPU, {"net": s.net})
    reloaded = StandaloneNet(arch, dataset.num_dense, dataset.table_sizes, **metrics["net"])
    reloaded.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    dense, sparse, _ = (torch.from_numpy(a) for a in dataset.split("test").batch(0, 500))
    with torch.no_grad():
        assert torch.equal(reloaded.eval()(dense, sparse), model.eval()(dense, sparse))
    val = evaluate(lambda b: reloaded(b[0], b[1]), dataset.split("val"), 4096, CPU)
    assert val == metrics["val"]
    assert metrics["val"]["logloss"] == metrics["best"]["logloss"]  # the kept weights are the best evaluated


def test_training_to_convergence_records_its_curve(tiny_data, arch, tmp_path, one_thread):
    metrics = train_final(
        arch,
        tiny_data,
        settings(max_epochs=4, patience=1, use_layernorm=False),
        TrainingOutputs.in_folder(tmp_path),
        CPU,
    )
    meta = json.loads((tiny_data / "meta.json").read_text())
    steps_per_epoch = meta["rows"]["train"] // 256
    curve = metrics["curve"]
    assert [c["step"] for c in curve] == list(range(steps_per_epoch, metrics["steps"] + 1, steps_per_epoch))
    assert [c["epoch"] for c in curve] == list(range(1, len(curve) + 1))
    assert metrics["best"] == min(({k: c[k] for k in ("step", "epoch", "logloss")} for c in curve),
                                  key=lambda c: c["logloss"])  # fmt: skip
    assert metrics["stop_reason"] in ("patience", "max_epochs")
    if metrics["stop_reason"] == "max_epochs":
        assert metrics["steps"] == 4 * steps_per_epoch
    else:
        assert curve[-1]["logloss"] >= curve[-2]["logloss"] and metrics["best"]["step"] == curve[-2]["step"]
    assert metrics["base_rate_logloss"] == base_rate_logloss(meta["positive_rate"]["train"])
    assert metrics["divergence_logloss"] == 2.0 * metrics["base_rate_logloss"]
    assert metrics["val"]["logloss"] < metrics["base_rate_logloss"]  # it learned
    log = (tmp_path / "train_log.csv").read_text().splitlines()
    assert log[0] == "step,rows,loss,lr,seconds,epoch,val_logloss,val_auc"
    evaluated = [line.split(",") for line in log[1:] if line.split(",")[6]]
    assert [float(row[6]) for row in evaluated] == [c["logloss"] for c in curve]


def test_killed_final_training_resumes_to_the_uninterrupted_weights(tiny_data, arch, tmp_path, monkeypatch,
                                                                    one_thread):  # fmt: skip
    """Killed in the second epoch after evaluations and a shuffled first epoch: the rerun ends identically."""
    s = settings(eval_every=7, checkpoint_minutes=1e-9, embedding_l2=1e-3, max_epochs=2, patience=5)
    whole = train_final(arch, tiny_data, s, TrainingOutputs.in_folder(tmp_path / "whole"), CPU)
    calls = {"n": 0}
    read_rows = sigeo.final.read_rows

    def crashing(split, rows):
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt
        return read_rows(split, rows)

    monkeypatch.setattr(sigeo.final, "read_rows", crashing)
    with pytest.raises(KeyboardInterrupt):
        train_final(arch, tiny_data, s, TrainingOutputs.in_folder(tmp_path / "killed"), CPU)
    assert torch.load(tmp_path / "killed" / "resume.pt", weights_only=True)["loop"]["step"] == 29
    monkeypatch.setattr(sigeo.final, "read_rows", read_rows)
    resumed = train_final(arch, tiny_data, s, TrainingOutputs.in_folder(tmp_path / "killed"), CPU)
    for key in ("val", "test", "steps", "best", "stop_reason"):
        assert resumed[key] == whole[key], key
    assert [c["logloss"] for c in resumed["curve"]] == [c["logloss"] for c in whole["curve"]]
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True) for d in ("whole", "killed"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "killed" / "resume.pt").exists()


def test_a_diverging_run_is_reported_and_never_selected(tiny_data, arch, tmp_path, one_thread):
    blown = train_final(
        arch, tiny_data, settings(lr=1e6, use_layernorm=False), TrainingOutputs.in_folder(tmp_path / "0"), CPU
    )
    assert blown["status"] == "diverged" and blown["val"] is None and blown["test"] is None
    assert isinstance(blown["diverged"]["step"], int) and blown["diverged"]["step"] >= 0
    assert "training loss" in blown["diverged"]["reason"] or "validation log loss" in blown["diverged"]["reason"]
    assert json.loads((tmp_path / "0" / "metrics.json").read_text())["status"] == "diverged"
    assert (tmp_path / "0" / "model.pt").exists() and not (tmp_path / "0" / "resume.pt").exists()
    good = train_final(arch, tiny_data, settings(max_epochs=1), TrainingOutputs.in_folder(tmp_path / "1"), CPU)
    archs = []
    for rank in range(3):
        archs.append(tmp_path / f"{rank}.json")
        archs[-1].write_text(json.dumps(arch.to_dict(0.0)))
    # rank 2: a finished run whose validation log loss is NaN (as an older run could report) lowest on val
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "metrics.json").write_text(json.dumps({**good, "val": {**good["val"], "logloss": math.nan}}))
    metrics = [tmp_path / str(rank) / "metrics.json" for rank in range(3)]
    best = select_best(metrics, archs)
    assert best["rank"] == 1 and best["diverged"] == 2 and best["model"] == str(tmp_path / "1" / "model.pt")
    assert [c["diverged"] for c in best["candidates"]] == [True, False, True]
    # NaN at rank 0 is not selected either (min() over NaN keeps the first element)
    best = select_best([metrics[2], metrics[1]], archs[:2])
    assert best["rank"] == 1
    with pytest.raises(SigeoError, match="all 2 candidates diverged"):
        select_best([metrics[0], metrics[2]], archs[:2])


def test_validation_far_above_the_base_rate_is_divergence(tiny_data, arch, tmp_path, one_thread):
    """With a factor just above 1, a model that has not yet beaten the base rate at its first evaluation is cut."""
    metrics = train_final(
        arch,
        tiny_data,
        settings(divergence_factor=1.0001, eval_every=1, lr=1.0),
        TrainingOutputs.in_folder(tmp_path),
        CPU,
    )
    assert metrics["status"] == "diverged" and metrics["diverged"]["step"] == metrics["curve"][-1]["step"]
    assert metrics["curve"][-1]["logloss"] > metrics["divergence_logloss"]
    assert "above the limit" in metrics["diverged"]["reason"]


def test_epoch_order_shuffles_whole_blocks_reproducibly():
    order = epoch_order(2500, 1000, 7, 0)
    assert sorted(order) == list(range(2500))
    blocks = order // 1000
    runs = [int(b) for i, b in enumerate(blocks) if i == 0 or b != blocks[i - 1]]
    assert sorted(runs) == [0, 1, 2]  # every block read in one run
    assert np.array_equal(order, epoch_order(2500, 1000, 7, 0))
    assert not np.array_equal(order, epoch_order(2500, 1000, 7, 1))
    assert not np.array_equal(order, epoch_order(2500, 1000, 8, 0))
    assert not np.array_equal(order[:1000] % 1000, np.arange(1000))  # rows shuffled inside a block


def test_train_model_trains_any_module(tiny_data, tmp_path, one_thread):
    """A logistic regression over the hashed ids and dense features, through the same recipe."""
    dataset = Dataset.open(tiny_data)

    class Logistic(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.offsets = torch.tensor([0, *np.cumsum(dataset.table_sizes)[:-1]])
            self.ids = torch.nn.Embedding(sum(dataset.table_sizes), 1, sparse=True, _weight=torch.zeros(
                sum(dataset.table_sizes), 1))  # fmt: skip
            self.dense = torch.nn.Linear(dataset.num_dense, 1)

        def forward(self, dense, sparse):
            return self.dense(dense).squeeze(1) + self.ids(sparse + self.offsets).sum(dim=(1, 2))

    torch.manual_seed(0)
    metrics = train_model(
        Logistic(), tiny_data, settings(), TrainingOutputs.in_folder(tmp_path), CPU, {"model": "logistic"}
    )
    assert metrics["model"] == "logistic" and metrics["status"] == "ok"
    assert metrics["val"]["logloss"] < metrics["base_rate_logloss"]
    assert set(torch.load(tmp_path / "model.pt", weights_only=True)) == {"ids.weight", "dense.weight", "dense.bias"}


def test_layer_norm_switch_sizes_and_the_reference_network_without_it():
    """With layer norm, standalone_size still equals the built network and the flop counter; without, the network
    has no LayerNorm but attention's two (the reference's final training)."""
    from sigeo.space.choice import FULL
    from sigeo.space.subnet import standalone_size
    from sigeo.train import flops_per_sample, param_count

    rng = np.random.default_rng(4)
    for space in (SMALL, FULL):
        for _ in range(8):
            arch = sample_architecture(rng, space, 5)
            for use_layernorm in (False, True):
                with torch.device("meta"):
                    model = StandaloneNet(arch, 13, [3] * 26, use_layernorm=use_layernorm)
                    batch = (torch.zeros(1, 13), torch.zeros(1, 26, dtype=torch.long))
                    flops = flops_per_sample(model, batch, lambda b, m=model: m(b[0], b[1]))
                size = standalone_size(arch, 13, 26, use_layernorm)
                assert (size["params"], size["flops_2x_all_blocks"]) == (param_count(model)["params_dense"], flops)
                norms = [n for n, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)]
                if not use_layernorm:
                    assert all(n.endswith(("attn_ln1", "attn_ln2")) for n in norms)
                else:
                    assert sum(n.endswith("_ln") for n in norms) >= 2 * len(arch.blocks)  # dense and sparse outputs


def test_checkpoint_dir_takes_the_resume_checkpoint_out_of_the_results(
    tiny_data, arch, tmp_path, monkeypatch, one_thread
):
    """final.checkpoint_dir (e.g. node-local scratch): resume.pt goes there, under the output folder's absolute
    path, never beside the outputs; every output folder gets its own file."""
    from sigeo.io import resume_path
    from sigeo.train import Checkpointer

    monkeypatch.setattr(Checkpointer, "remove", lambda self: None)  # keep the last checkpoint to look at it
    scratch, out = tmp_path / "scratch", tmp_path / "results" / "final" / "a"
    s = settings(schedule="cosine", epochs=1, checkpoint_minutes=1e-9, checkpoint_dir=str(scratch))
    train_final(arch, tiny_data, s, TrainingOutputs.in_folder(out), CPU)
    expected = scratch.joinpath(*out.resolve().parts[1:], "resume.pt")
    assert resume_path(out, str(scratch)) == expected and expected.exists()
    assert torch.load(expected, weights_only=True)["loop"]["step"] > 0
    assert not (out / "resume.pt").exists() and (out / "metrics.json").exists()
    assert resume_path(out, None) == out / "resume.pt"
    assert resume_path(tmp_path / "results" / "final" / "b", str(scratch)) != expected
