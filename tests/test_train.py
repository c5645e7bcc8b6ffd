"""Training: schedule, clipping with sparse gradients, metrics, divergence, warm-up and resume, final training."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import default_settings, synthetic_dataset

from sigeo.final import select_best, train_final
from sigeo.io import TrainingOutputs
from sigeo.space.choice import SMALL, sample_architecture
from sigeo.train import (
    LR_MIN,
    Checkpointer,
    TouchedRows,
    TrainingDiverged,
    TrainSettings,
    clip_grad_norm,
    make_optimizer,
    make_scheduler,
    train_loop,
)
from sigeo.warmup import WarmupSettings, supernet_outputs, warm_up

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return synthetic_dataset(tmp_path_factory.mktemp("tiny"), rows=12000)


def warm_settings(**changes) -> WarmupSettings:
    base = replace(default_settings().warmup, batch_size=256, lr=0.05, strategy="default",
                   anypath_choice="binomial-0.5", use_layernorm=True, full_path_steps=5, weight_sharing="slice",
                   eval_batch_size=1024, eval_rows=None, checkpoint_minutes=60, log_every=5, num_blocks=2, seed=3,
                   epochs=1.0, lr_floor=0.0)  # fmt: skip
    return replace(base, **changes)


def test_schedule_values_at_0_w_and_t():
    model = torch.nn.Linear(2, 1)
    opt = make_optimizer(model, 0.1)
    sched = make_scheduler(opt, total_steps=100, warmup_steps=10)
    lrs = []
    for _ in range(101):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(LR_MIN)
    assert lrs[5] == pytest.approx(LR_MIN + (0.1 - LR_MIN) * 5 / 10)
    assert lrs[10] == pytest.approx(0.1)
    assert lrs[55] == pytest.approx(LR_MIN + (0.1 - LR_MIN) * (1 + math.cos(math.pi * 45 / 90)) / 2)
    assert lrs[100] == pytest.approx(LR_MIN, abs=1e-12)


def test_clipping_counts_sparse_gradients_once_per_row():
    emb = torch.nn.Embedding(10, 2, sparse=True)
    with torch.no_grad():
        emb.weight.fill_(1.0)
    emb(torch.tensor([3, 3, 4])).sum().backward()  # row 3 twice: its gradient is (2, 2)
    params = list(emb.parameters())
    total = clip_grad_norm(params, max_norm=1.0)
    assert total == pytest.approx(math.sqrt(2**2 * 2 + 1**2 * 2))
    dense = emb.weight.grad.to_dense()
    assert dense.norm().item() == pytest.approx(1.0, rel=1e-4)
    assert dense[3, 0].item() == pytest.approx(2 / math.sqrt(10), rel=1e-4)


def test_warmup_level_zero_saves_the_initialised_supernet(tiny_data, tmp_path):
    metrics = warm_up(tiny_data, "small", 0.0, warm_settings(), supernet_outputs(tmp_path), CPU)
    assert metrics["steps"] == 0 and metrics["rows"] == 0
    state = torch.load(tmp_path / "supernet.pt", weights_only=True)
    assert "head.weight" in state
    assert (tmp_path / "train_log.csv").read_text().startswith("step,rows,loss,lr,seconds")


def test_tiny_warmup_beats_the_base_rate(tiny_data, tmp_path):
    """A short warm-up trains mostly the full path (as the paper's 1 % level does): it must learn."""
    metrics = warm_up(
        tiny_data, "small", 1.0, warm_settings(lr=0.05, full_path_steps=1000), supernet_outputs(tmp_path), CPU
    )
    meta = json.loads((tiny_data / "meta.json").read_text())
    rate = meta["positive_rate"]["val"]
    base = -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))
    assert meta["rows"]["train"] == 9600 and metrics["steps"] == 32  # 8 shards of 1,200 rows: 4 whole batches each
    assert metrics["val_full_path"]["logloss"] < base
    assert metrics["val_full_path"]["auc"] > 0.55
    assert metrics["val"]["auc"] > 0.5


WARMUP_CHILD = """
import sys, torch
from sigeo.warmup import WarmupSettings, supernet_outputs, warm_up
settings = WarmupSettings(**__import__("json").loads(sys.argv[3]))
warm_up(sys.argv[1], "small", 1.0, settings, supernet_outputs(sys.argv[2]), torch.device("cpu"))
"""


def test_killed_warmup_resumes_to_identical_weights(tiny_data, tmp_path):
    settings = warm_settings(checkpoint_minutes=1e-9)  # a checkpoint after every step
    torch.set_num_threads(2)
    warm_up(tiny_data, "small", 1.0, settings, supernet_outputs(tmp_path / "whole"), CPU)
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", WARMUP_CHILD, str(tiny_data), str(out), json.dumps(vars(settings))], env=env
    )
    deadline = time.monotonic() + 120
    while not (out / "resume.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = torch.load(out / "resume.pt", weights_only=True)
    killed_at = saved["loop"]["step"]
    total = json.loads((tmp_path / "whole" / "metrics.json").read_text())["steps"]
    assert 0 < killed_at < total, "the kill should land mid-run"
    metrics = warm_up(tiny_data, "small", 1.0, settings, supernet_outputs(out), CPU)
    assert metrics["steps"] == total
    a = torch.load(tmp_path / "whole" / "supernet.pt", weights_only=True)
    b = torch.load(out / "supernet.pt", weights_only=True)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert not (out / "resume.pt").exists()


def test_divergence_stops_with_step_and_lr_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path):
    settings = warm_settings(lr=1e6, use_layernorm=False, checkpoint_minutes=1e-9)
    with pytest.raises(TrainingDiverged, match=r"at step (\d+) \(lr ") as failure:
        warm_up(tiny_data, "small", 1.0, settings, supernet_outputs(tmp_path), CPU)
    diverged_at = int(re.search(r"at step (\d+)", str(failure.value)).group(1))
    kept = torch.load(tmp_path / "resume.pt", weights_only=True)
    assert 0 < kept["loop"]["step"] <= diverged_at
    assert all(torch.isfinite(t).all() for t in kept["model"].values())
    assert not (tmp_path / "supernet.pt").exists()


def test_final_training_and_selection_on_validation(tiny_data, tmp_path):
    rng = np.random.default_rng(0)
    settings = replace(default_settings().final, lr=0.05, batch_size=256, epochs=1, eval_batch_size=2048,
                       max_train_rows=None, checkpoint_minutes=60, log_every=10, seed=1, max_epochs=2)  # fmt: skip
    metric_paths, arch_paths = [], []
    for rank in range(2):
        arch = sample_architecture(rng, SMALL, 2)
        (tmp_path / f"{rank}.json").write_text(json.dumps(arch.to_dict(0.0)))
        metrics = train_final(arch, tiny_data, settings, TrainingOutputs.in_folder(tmp_path / str(rank)), CPU)
        for split in ("val", "test"):
            assert set(metrics[split]) == {"logloss", "auc", "accuracy", "rows"}
        assert metrics["flops_2x_all_blocks"] > 0 and metrics["params"] > metrics["params_dense"] > 0
        metric_paths.append(tmp_path / str(rank) / "metrics.json")
        arch_paths.append(tmp_path / f"{rank}.json")
    # make the worse-on-val candidate the better one on test: selection must still follow val
    m0, m1 = (json.loads(p.read_text()) for p in metric_paths)
    m0["val"]["logloss"], m1["val"]["logloss"] = 0.40, 0.50
    m0["test"]["logloss"], m1["test"]["logloss"] = 0.60, 0.30
    metric_paths[0].write_text(json.dumps(m0))
    metric_paths[1].write_text(json.dumps(m1))
    best = select_best(metric_paths, arch_paths)
    assert best["rank"] == 0 and best["test"]["logloss"] == 0.60
    assert best["model"] == str(tmp_path / "0" / "model.pt") and best["diverged"] == 0


def test_base_rate_logloss_is_the_binary_entropy_of_the_rate():
    from sigeo.train import base_rate_logloss

    assert base_rate_logloss(0.5) == pytest.approx(math.log(2))
    assert base_rate_logloss(0.25) == pytest.approx(0.5623351446188083)
    with pytest.raises(ValueError):
        base_rate_logloss(0.0)


# --- the loop's schedules, validation hook, early stopping and embedding L2 ---------------------------
class Affine(torch.nn.Module):
    """(dense, ids) -> logits: a linear model of the dense features plus one embedding weight per id."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(3, 1)
        self.embedding = torch.nn.Embedding(10, 1, sparse=True)

    def forward(self, dense: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.linear(dense).squeeze(1) + self.embedding(ids).sum(dim=(1, 2))


def affine_batches(first: int):
    """Batch ``step`` is drawn from a generator seeded by the step, so it does not depend on where a run starts."""
    for step in itertools.count(first):
        g = torch.Generator().manual_seed(step)
        dense = torch.randn(8, 3, generator=g)
        yield dense, torch.randint(0, 10, (8, 2), generator=g), (dense[:, 0] > 0).float()


def run_affine(tmp_path, settings: TrainSettings, total: int, validate=None, name: str = "ckpt"):
    model = Affine()
    checkpointer = Checkpointer(tmp_path / f"{name}.pt", settings.checkpoint_minutes * 60)
    state = train_loop(model, lambda b, _: model(b[0], b[1]), affine_batches, total, settings, CPU, checkpointer,
                       validate=validate, steps_per_epoch=10)  # fmt: skip
    return model, state


def planted(curve: list[float], model_ref: list, snapshots: list):
    """A validation callable returning the planted log losses in turn and recording the weights it saw."""
    calls = iter(curve)

    def validate(step: int) -> dict[str, float]:
        snapshots.append({k: v.clone() for k, v in model_ref[0].state_dict().items()})
        return {"logloss": next(calls)}

    return validate


def test_plateau_cuts_the_rate_stops_on_patience_and_restores_the_best_weights(tmp_path):
    settings = TrainSettings(lr=0.1, batch_size=8, schedule="plateau", eval_every=5, patience=2, plateau_factor=0.5,
                             plateau_patience=0, checkpoint_minutes=60, log_every=1)  # fmt: skip
    snapshots, ref = [], []
    model = Affine()
    ref.append(model)
    validate = planted([0.60, 0.50, 0.55, 0.40, 0.45, 0.47, 0.10], ref, snapshots)
    checkpointer = Checkpointer(tmp_path / "c.pt", 3600)
    state = train_loop(model, lambda b, _: model(b[0], b[1]), affine_batches, 100, settings, CPU, checkpointer,
                       validate=validate, steps_per_epoch=10)  # fmt: skip
    # evaluations at steps 5..30; the best is 0.40 at step 20; 0.45 and 0.47 are the two bad ones
    assert [c["step"] for c in state.curve] == [5, 10, 15, 20, 25, 30]
    assert state.stop_reason == "patience" and state.step == 30
    assert state.best["step"] == 20 and state.best["epoch"] == 2.0 and state.best["logloss"] == 0.40
    # the rate is halved after each evaluation without a new best (15, 25, 30)
    assert [c["lr"] for c in state.curve] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025])
    assert [r["lr"] for r in state.log if r["step"] in (16, 26)] == pytest.approx([0.05, 0.025])
    best = snapshots[3]
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())
    assert not torch.equal(model.state_dict()["linear.weight"], snapshots[-1]["linear.weight"])


def test_cosine_with_a_validation_hook_neither_stops_nor_restores(tmp_path):
    """The warm-up's use: validation every N steps is only recorded; the schedule and last weights are untouched."""
    base = TrainSettings(lr=0.1, batch_size=8, checkpoint_minutes=60, log_every=1)
    plain, plain_state = run_affine(tmp_path, base, 40, name="plain")
    hooked = TrainSettings(lr=0.1, batch_size=8, checkpoint_minutes=60, log_every=1, eval_every=15)
    ref, snapshots = [Affine()], []
    model = ref[0]
    state = train_loop(model, lambda b, _: model(b[0], b[1]), affine_batches, 40, hooked, CPU,
                       Checkpointer(tmp_path / "hooked.pt", 3600), validate=planted([0.3, 0.9, 5.0], ref, snapshots),
                       steps_per_epoch=10)  # fmt: skip
    assert [(c["step"], c["epoch"], c["logloss"]) for c in state.curve] == [
        (15, 1.5, 0.3),
        (30, 3.0, 0.9),
        (40, 4.0, 5.0),
    ]
    assert state.stop_reason == "schedule_end" and state.best is None
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in model.state_dict().items())
    assert [r["lr"] for r in state.log] == [r["lr"] for r in plain_state.log]


def test_cosine_schedule_logs_the_papers_learning_rates(tmp_path):
    """Warm-up over 10 % of 100 steps from 1e-8, then cosine to 1e-8: the rate each logged step used."""
    _, state = run_affine(tmp_path, TrainSettings(lr=0.1, batch_size=8, checkpoint_minutes=60, log_every=1), 100)
    lr = {r["step"]: r["lr"] for r in state.log}  # step k's entry is the rate of the k-th update (index k - 1)
    assert lr[1] == pytest.approx(LR_MIN)
    assert lr[6] == pytest.approx(LR_MIN + (0.1 - LR_MIN) * 5 / 10)
    assert lr[11] == pytest.approx(0.1)
    assert lr[56] == pytest.approx(LR_MIN + (0.1 - LR_MIN) * (1 + math.cos(math.pi * 45 / 90)) / 2)
    assert lr[100] == pytest.approx(LR_MIN + (0.1 - LR_MIN) * (1 + math.cos(math.pi * 89 / 90)) / 2)


def test_a_validation_loss_above_the_limit_ends_the_run_as_diverged(tmp_path):
    settings = TrainSettings(lr=0.1, batch_size=8, schedule="plateau", eval_every=4, checkpoint_minutes=60,
                             divergence_logloss=1.0, patience=5)  # fmt: skip
    ref, snapshots = [Affine()], []
    model = ref[0]
    with pytest.raises(TrainingDiverged) as failure:
        train_loop(model, lambda b, _: model(b[0], b[1]), affine_batches, 100, settings, CPU,
                   Checkpointer(tmp_path / "c.pt", 3600),
                   validate=planted([0.7, 0.6, 3.0], ref, snapshots))  # fmt: skip
    assert failure.value.step == 12 and "validation log loss 3 is above the limit 1" in failure.value.reason
    assert [c["logloss"] for c in failure.value.state.curve] == [0.7, 0.6, 3.0]
    with pytest.raises(TrainingDiverged, match="validation log loss nan"):
        train_loop(model, lambda b, _: model(b[0], b[1]), affine_batches, 100, settings, CPU,
                   Checkpointer(tmp_path / "d.pt", 3600), validate=lambda _: {"logloss": math.nan})  # fmt: skip


def test_killed_plateau_loop_resumes_to_the_uninterrupted_weights(tmp_path):
    """A crash after step 23 (between evaluations, after a rate cut): the rerun ends identically."""
    settings = TrainSettings(lr=0.1, batch_size=8, schedule="plateau", eval_every=5, patience=3, plateau_factor=0.5,
                             checkpoint_minutes=1e-9, log_every=1, embedding_l2=0.01)  # fmt: skip
    curve = [0.6, 0.5, 0.55, 0.4, 0.45, 0.47, 0.48]

    def run(batches, name):
        ref, snapshots = [Affine()], []
        model = ref[0]
        checkpointer = Checkpointer(tmp_path / f"{name}.pt", settings.checkpoint_minutes * 60)
        state = train_loop(model, lambda b, _: model(b[0], b[1]), batches, 100, settings, CPU, checkpointer,
                           validate=planted(curve[len(snapshots_done[name]):], ref, snapshots))  # fmt: skip
        return model, state

    snapshots_done = {"whole": [], "killed": []}
    whole, whole_state = run(affine_batches, "whole")

    def crashing(first: int):
        for step, batch in zip(itertools.count(first), affine_batches(first), strict=False):
            if step == 23:
                raise KeyboardInterrupt
            yield batch

    with pytest.raises(KeyboardInterrupt):
        run(crashing, "killed")
    saved = torch.load(tmp_path / "killed.pt", weights_only=True)
    assert saved["loop"]["step"] == 23 and saved["best_model"] is not None
    snapshots_done["killed"] = saved["loop"]["curve"]  # the validations already done are not repeated
    resumed, resumed_state = run(affine_batches, "killed")
    assert resumed_state.curve == whole_state.curve and resumed_state.best == whole_state.best
    assert resumed_state.stop_reason == whole_state.stop_reason == "patience"
    assert all(torch.equal(v, whole.state_dict()[k]) for k, v in resumed.state_dict().items())


def test_embedding_l2_penalises_each_distinct_row_looked_up_once():
    emb = torch.nn.Embedding(6, 2, sparse=True)
    with torch.no_grad():
        emb.weight.copy_(torch.arange(12.0).view(6, 2))
    touched = TouchedRows(torch.nn.Sequential(emb))
    emb(torch.tensor([[1, 1], [4, 1]]))
    penalty = touched.squared_norm()
    assert penalty.item() == (2**2 + 3**2) + (8**2 + 9**2)  # rows 1 and 4, once each
    penalty.backward()
    grad = emb.weight.grad.coalesce()
    assert grad.is_sparse and sorted(grad.indices()[0].tolist()) == [1, 4]
    assert torch.equal(grad.to_dense()[[1, 4]], 2 * emb.weight.detach()[[1, 4]])
    assert touched.squared_norm().item() == 0  # cleared after each call
    touched.close()
    emb(torch.tensor([[0]]))
    assert touched.seen == []


def test_plateau_warms_up_over_a_tenth_of_the_first_epoch(tmp_path):
    settings = TrainSettings(lr=0.1, batch_size=8, schedule="plateau", eval_every=1000, checkpoint_minutes=60,
                             log_every=1)  # fmt: skip
    model = Affine()
    state = train_loop(model, lambda b, _: model(b[0], b[1]), affine_batches, 60, settings, CPU,
                       Checkpointer(tmp_path / "c.pt", 3600), validate=lambda _: {"logloss": 0.5},
                       steps_per_epoch=40)  # fmt: skip
    lr = {r["step"]: r["lr"] for r in state.log}
    assert lr[1] == pytest.approx(LR_MIN)
    assert lr[3] == pytest.approx(LR_MIN + (0.1 - LR_MIN) * 2 / 4)
    assert lr[5] == lr[60] == pytest.approx(0.1)
