"""The theory study on tiny settings, checked against a plain one-network-at-a-time re-implementation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from sigeo.config import load_settings
from sigeo.proxies import ProbeSettings
from sigeo.study.mnist import Digits
from sigeo.study.theory import STATISTICS, TheorySettings, run_seed, run_width, start_batch
from sigeo.study.theory_report import correlation_table, fidelity_checks, readme_comparison, write_comparison
from sigeo.study.verdict import FAIL, INCONCLUSIVE, PASS

LEVELS = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)
PROBE = ProbeSettings(zico_coef=1, fr_coef=1, loss_coef=0, sigeo_mode="fixed", seed=0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits() -> Digits:
    """10 Gaussian clusters in 8 dimensions: 320 train rows (10 batches of 32), 80 test rows."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 8))

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, n)
        return (centers[y] + rng.normal(scale=1.5, size=(n, 8))).astype(np.float32), y.astype(np.int64)

    x, y = sample(320)
    x_test, y_test = sample(80)
    return Digits("clusters", x, y, x_test, y_test)


def tiny(**changes) -> TheorySettings:
    base = TheorySettings(
        mnist_dir=None, widths=(2, 4, 6), repeats=2, epochs=1, batch_size=32, lr=0.2,
        levels=LEVELS, probe_batches=4, mode="fixed", seed=7,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def plain_run(digits: Digits, width: int, repeat: int, settings: TheorySettings, output_relu: bool = False):
    """One network trained on its own with nn.Linear + torch.optim.SGD; returns (model, per-step weights, perms)."""
    g = torch.Generator().manual_seed(run_seed(settings.seed, width, repeat))
    d, c = digits.x.shape[1], 10
    model = nn.Sequential(nn.Linear(d, width), nn.ReLU(), nn.Linear(width, c), *([nn.ReLU()] if output_relu else []))
    with torch.no_grad():  # PyTorch's default Linear init, U(±1/√fan_in), drawn weight, bias, weight, bias
        for layer, fan_in in ((model[0], d), (model[2], width)):
            layer.weight.copy_((torch.rand(layer.weight.shape, generator=g) * 2 - 1) * fan_in**-0.5)
            layer.bias.copy_((torch.rand(layer.bias.shape[0], 1, generator=g)[:, 0] * 2 - 1) * fan_in**-0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr)
    x, y = torch.from_numpy(digits.x), torch.from_numpy(digits.y)
    perms, history = [], []
    for _ in range(settings.epochs):
        perm = torch.randperm(len(x), generator=g)
        perms.append(perm)
        for b in range(0, len(x), settings.batch_size):
            rows = perm[b : b + settings.batch_size]
            optimizer.zero_grad()
            F.cross_entropy(model(x[rows]), y[rows]).backward()
            optimizer.step()
            history.append([p.detach().clone() for p in model.parameters()])
    return model, history, perms


def test_start_batches_of_the_reference():
    assert [start_batch(level, 469, 4) for level in LEVELS] == [
        0,
        46,
        93,
        187,
        281,
        375,
        464,
    ]  # 100 %: ⌊469·0.99⌋, as the notebook


def test_tiny_study_gives_a_complete_table(digits):
    settings = tiny()
    runs = pd.concat([run_width(digits, w, settings, PROBE) for w in settings.widths], ignore_index=True)
    assert len(runs) == 3 * 2 * 7
    assert np.isfinite(runs[[*STATISTICS, "test_loss", "train_loss"]].to_numpy()).all()
    assert sorted(runs["start_batch"].unique()) == [0, 1, 2, 4, 6]  # 10 batches: ⌊10p⌋ capped at 10 − 4
    table = correlation_table(runs)
    assert list(table["level"]) == list(LEVELS) and (table["n"] == 6).all()
    assert list(table.columns) == ["level", "start_batch"] + [
        f"{name}_{kind}" for name in STATISTICS for kind in ("spearman", "kendall")
    ] + ["n"]
    assert table.drop(columns="level").notna().all().all()
    again = run_width(digits, 4, settings, PROBE)
    pd.testing.assert_frame_equal(again, runs[runs["width"] == 4].reset_index(drop=True))


def test_batched_runs_equal_independent_networks(digits):
    settings = tiny(epochs=2, levels=(0.2,))
    runs = run_width(digits, 4, settings, PROBE)
    for repeat in range(2):
        model, _, perms = plain_run(digits, 4, repeat, settings)
        with torch.no_grad():
            test_loss = F.cross_entropy(model(torch.from_numpy(digits.x_test)), torch.from_numpy(digits.y_test))
        assert runs.loc[repeat, "test_loss"] == pytest.approx(float(test_loss), rel=1e-5)
    # the probe at 20 % (batch 2) sees the weights after 2 steps; its loss is that of batch 2 + 3 = 5
    _, history, perms = plain_run(digits, 4, 0, settings)
    probe_net = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 10))
    with torch.no_grad():
        for p, w in zip(probe_net.parameters(), history[1], strict=True):
            p.copy_(w)
        rows = perms[0][5 * 32 : 6 * 32]
        loss = F.cross_entropy(probe_net(torch.from_numpy(digits.x)[rows]), torch.from_numpy(digits.y)[rows])
    assert runs.loc[0, "loss"] == pytest.approx(float(loss), rel=1e-5)


@pytest.mark.parametrize("mode", ["fixed", "faithful"])
def test_probing_leaves_training_alone(digits, mode):
    probed = run_width(digits, 6, tiny(mode=mode), PROBE)
    unprobed = run_width(digits, 6, tiny(mode=mode, levels=()), PROBE)
    assert unprobed.empty
    assert probed["test_loss"].unique().tolist() == probed.drop_duplicates("repeat")["test_loss"].tolist()
    reference = run_width(digits, 6, tiny(mode=mode, levels=(0.5,)), PROBE)
    assert np.array_equal(probed.drop_duplicates("repeat")["test_loss"], reference["test_loss"])


def test_faithful_mode_probes_after_each_training_step(digits):
    """Faithful: probe batch k is scored with the weights after the training step on it, the
    network ends in a ReLU, and only weight matrices are measured; its loss is batch 3's after 4 steps."""
    settings = tiny(mode="faithful", levels=(0.0,))
    runs = run_width(digits, 4, settings, PROBE)
    model, history, perms = plain_run(digits, 4, 1, settings, output_relu=True)
    with torch.no_grad():
        for p, w in zip(model.parameters(), history[3], strict=True):
            p.copy_(w)
        rows = perms[0][3 * 32 : 4 * 32]
        loss = F.cross_entropy(model(torch.from_numpy(digits.x)[rows]), torch.from_numpy(digits.y)[rows])
    assert runs.loc[1, "loss"] == pytest.approx(float(loss), rel=1e-5)
    # Fisher–Rao over every parameter, biases included: θ after step 3 · Σ_b (running sum of g_0..g_b)
    grads = []
    for k in range(4):
        with torch.no_grad():
            for p, w in zip(model.parameters(), history[k], strict=True):
                p.copy_(w)
        rows = perms[0][k * 32 : (k + 1) * 32]
        model.zero_grad()
        F.cross_entropy(model(torch.from_numpy(digits.x)[rows]), torch.from_numpy(digits.y)[rows]).backward()
        grads.append([p.grad.detach().clone().double() for p in model.parameters()])
    summed = [sum((4 - k) * grads[k][i] for k in range(4)) for i in range(4)]
    inner = [float((w.double() * g).sum()) for w, g in zip(history[3], summed, strict=True)]
    assert runs.loc[1, "fisher_rao"] == pytest.approx(math.log(abs(sum(inner)) + 1e-10), rel=1e-4)
    assert abs(math.log(abs(inner[0] + inner[2]) + 1e-10) - runs.loc[1, "fisher_rao"]) > 1e-3  # biases matter
    fixed = run_width(digits, 4, tiny(levels=(0.0,)), PROBE)
    assert (runs["zico"] != fixed["zico"]).all() and (runs["test_loss"] != fixed["test_loss"]).all()


HAND_TABLE = pd.DataFrame({
    "level": [0.0, 0.1, 0.5], "loss_spearman": [0.2, 0.5, 0.3], "loss_kendall": [0.1, 0.4, 0.2],
    "fisher_rao_spearman": [0.1, -0.2, -0.1], "fisher_rao_kendall": [0.0, -0.1, -0.1],
    "grad_abs_mean_spearman": [-0.3, -0.4, 0.05], "grad_abs_mean_kendall": [-0.2, -0.3, 0.0],
})  # fmt: skip


def test_readme_comparison():
    comparison = readme_comparison(HAND_TABLE)
    assert list(comparison["level"]) == [0.0, 0.1]  # 0.5 was not published
    assert comparison.loc[1, "loss_spearman"] == 0.5 and comparison.loc[1, "loss_spearman_readme"] == 0.71
    assert comparison.loc[0, "grad_abs_mean_kendall_readme"] == -0.34


def planted_runs() -> pd.DataFrame:
    """40 runs × levels 0, 10 %, 50 %. Training loss: noise at 0 %, the test loss at 10 % and 50 % (rises:
    PASS). Fisher–Rao: −test loss from 10 % on (raw ρ −1, direction-adjusted +1: PASS). mean |grad|: +test
    loss at 50 % (direction-adjusted −1: FAIL)."""
    rng = np.random.default_rng(0)
    test = rng.uniform(0.5, 1.5, 40)
    rows = []
    for r, loss in enumerate(test):
        for level in (0.0, 0.1, 0.5):
            rows.append({"width": 2 * (r // 4) + 2, "repeat": r % 4, "level": level, "test_loss": loss,
                         "loss": rng.normal() if level == 0 else loss,
                         "fisher_rao": rng.normal() if level == 0 else -loss,
                         "grad_abs_mean": loss if level == 0.5 else -loss})  # fmt: skip
    return pd.DataFrame(rows)


def test_fidelity_checks_are_verdicts_with_their_numbers(tmp_path):
    runs = planted_runs()
    checks = fidelity_checks(runs, n_resamples=100)
    assert [(c.claim, c.status) for c in checks] == [
        ("training loss's ρ at 10 % exceeds its ρ at 0 %", PASS),
        ("training loss's ρ at every level from 10 % exceeds its ρ at 0 %", PASS),
        ("Fisher–Rao's ρ at every level from 10 % is above 0", PASS),
        ("mean |grad|'s ρ at every level from 10 % is above 0", FAIL),
    ]
    zero = runs[runs["level"] == 0.0]
    rise = 1 - stats.spearmanr(zero["loss"], zero["test_loss"])[0]
    assert checks[0].numbers["estimate"] == pytest.approx(rise) and checks[0].numbers["n"] == 40
    assert checks[2].numbers["estimate"] == pytest.approx(1.0) and checks[3].numbers["estimate"] == pytest.approx(-1.0)
    assert checks[3].numbers["high"] == pytest.approx(-1.0)
    noisy = runs.assign(fisher_rao=np.random.default_rng(1).normal(size=len(runs)))
    assert fidelity_checks(noisy, n_resamples=100)[2].status == INCONCLUSIVE  # noise: the interval spans 0
    unmeasured = fidelity_checks(runs[runs["level"] > 0], n_resamples=10)
    assert {c.status for c in unmeasured} == {INCONCLUSIVE} and "needs levels 0 % and 10 %" in unmeasured[0].reason
    out = {name: tmp_path / name for name in ("c.csv", "c.md", "c.html")}
    write_comparison(readme_comparison(HAND_TABLE), checks, out["c.csv"], out["c.md"], out["c.html"])
    assert "- Fisher–Rao's ρ at every level from 10 % is above 0: **PASS** (interval above" in out["c.md"].read_text()
    assert "Fidelity checks" in out["c.html"].read_text()


def test_settings_from_the_schema_defaults():
    run = load_settings({"datasets": {"d": {"format": "criteo", "source": "synthetic", "synthetic": {"rows": 10}}}})
    settings = run.theory
    assert settings.widths == tuple(range(2, 51, 2)) and settings.levels == LEVELS
    assert (settings.repeats, settings.epochs, settings.batch_size, settings.lr) == (25, 3, 128, 0.2)
    assert (settings.probe_batches, settings.mode, settings.mnist_dir) == (4, "fixed", None)
    assert run.theory_probe == ProbeSettings(1, 1, 0, "fixed", 2023)
