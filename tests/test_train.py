"""Training: schedule, clipping with sparse gradients, metrics, divergence, warm-up and resume, final training."""

from __future__ import annotations

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

from sigeo.data.formats import get_format
from sigeo.data.prepare import PrepareSettings, prepare
from sigeo.data.synthetic import SyntheticSpec, generate
from sigeo.final import FinalSettings, select_best, train_final
from sigeo.space.choice import SMALL, sample_architecture
from sigeo.train import LR_MIN, TrainingDiverged, clip_grad_norm, make_optimizer, make_scheduler
from sigeo.warmup import WarmupSettings, warm_up

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    fmt = get_format("criteo")
    generate(fmt, SyntheticSpec(rows=12000, seed=5, max_vocab=20), root / "raw" / "train.txt")
    prepare(fmt, root / "raw" / "train.txt", root / "data", PrepareSettings(seed=1, max_table_size=50))
    return root / "data"


def warm_settings(**changes) -> WarmupSettings:
    base = WarmupSettings(batch_size=256, lr=0.05, strategy="default", anypath_choice="binomial-0.5",
                          use_layernorm=True, full_path_steps=5, weight_sharing="slice", eval_batch_size=1024,
                          eval_rows=None, checkpoint_minutes=60, log_every=5, num_blocks=2, seed=3)  # fmt: skip
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
    metrics = warm_up(tiny_data, "small", 0.0, warm_settings(), tmp_path, CPU)
    assert metrics["steps"] == 0 and metrics["rows"] == 0
    state = torch.load(tmp_path / "supernet.pt", weights_only=True)
    assert "head.weight" in state
    assert (tmp_path / "train_log.csv").read_text().startswith("step,rows,loss,lr,seconds")


def test_tiny_warmup_beats_the_base_rate(tiny_data, tmp_path):
    """A short warm-up trains mostly the full path (as the paper's 1 % level does): it must learn."""
    metrics = warm_up(tiny_data, "small", 1.0, warm_settings(lr=0.01, full_path_steps=1000), tmp_path, CPU)
    meta = json.loads((tiny_data / "meta.json").read_text())
    rate = meta["positive_rate"]["val"]
    base = -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))
    assert metrics["steps"] == meta["rows"]["train"] // 256
    assert metrics["val_full_path"]["logloss"] < base
    assert metrics["val_full_path"]["auc"] > 0.55
    assert metrics["val"]["auc"] > 0.5


WARMUP_CHILD = """
import sys, torch
from sigeo.warmup import WarmupSettings, warm_up
settings = WarmupSettings(**__import__("json").loads(sys.argv[3]))
warm_up(sys.argv[1], "small", 1.0, settings, sys.argv[2], torch.device("cpu"))
"""


def test_killed_warmup_resumes_to_identical_weights(tiny_data, tmp_path):
    settings = warm_settings(checkpoint_minutes=1e-9)  # a checkpoint after every step
    torch.set_num_threads(2)
    warm_up(tiny_data, "small", 1.0, settings, tmp_path / "whole", CPU)
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
    metrics = warm_up(tiny_data, "small", 1.0, settings, out, CPU)
    assert metrics["steps"] == total
    a = torch.load(tmp_path / "whole" / "supernet.pt", weights_only=True)
    b = torch.load(out / "supernet.pt", weights_only=True)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert not (out / "resume.pt").exists()


def test_divergence_stops_with_step_and_lr_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path):
    settings = warm_settings(lr=1e6, use_layernorm=False, checkpoint_minutes=1e-9)
    with pytest.raises(TrainingDiverged, match=r"at step (\d+) \(lr ") as failure:
        warm_up(tiny_data, "small", 1.0, settings, tmp_path, CPU)
    diverged_at = int(re.search(r"at step (\d+)", str(failure.value)).group(1))
    kept = torch.load(tmp_path / "resume.pt", weights_only=True)
    assert 0 < kept["loop"]["step"] <= diverged_at
    assert all(torch.isfinite(t).all() for t in kept["model"].values())
    assert not (tmp_path / "supernet.pt").exists()


def test_final_training_and_selection_on_validation(tiny_data, tmp_path):
    rng = np.random.default_rng(0)
    settings = FinalSettings(lr=0.05, batch_size=256, epochs=1, eval_batch_size=2048, max_train_rows=None,
                             checkpoint_minutes=60, log_every=10, seed=1)  # fmt: skip
    metric_paths, arch_paths = [], []
    for rank in range(2):
        arch = sample_architecture(rng, SMALL, 2)
        (tmp_path / f"{rank}.json").write_text(json.dumps(arch.to_dict(0.0)))
        metrics = train_final(arch, tiny_data, settings, tmp_path / str(rank), CPU)
        for split in ("val", "test"):
            assert set(metrics[split]) == {"logloss", "auc", "accuracy", "rows"}
        assert metrics["flops_per_sample"] > 0 and metrics["params"] > metrics["params_dense"] > 0
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


def test_base_rate_logloss_is_the_binary_entropy_of_the_rate():
    from sigeo.train import base_rate_logloss

    assert base_rate_logloss(0.5) == pytest.approx(math.log(2))
    assert base_rate_logloss(0.25) == pytest.approx(0.5623351446188083)
    with pytest.raises(ValueError):
        base_rate_logloss(0.0)
