"""The RecSys correlation study: settings, seeded subnets, a diverging subnet, the table's rows and signs, the plot."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch

from sigeo.config import load_config
from sigeo.data.formats import get_format
from sigeo.data.prepare import PrepareSettings, prepare
from sigeo.data.synthetic import SyntheticSpec, generate
from sigeo.final import FinalSettings
from sigeo.report.plots import save_figure
from sigeo.report.tables import write_table
from sigeo.study.correlation import (
    CorrelationSettings,
    collect,
    correlation_table,
    fidelity_check,
    subnets,
    train_subnet,
    truth_settings,
    warmup_figure,
    write_summary,
)

CPU = torch.device("cpu")


def config(**correlation) -> dict:
    return load_config(
        {"datasets": {"d": {"format": "criteo", "source": "synthetic", "synthetic": {"rows": 10}}},
         "seed": 5, "num_blocks": 2, "final": {"epochs": 2, "max_train_rows": 999},
         "proxy": {"probe_batch_size": 64}, "correlation": correlation}
    )  # fmt: skip


def test_settings_defaults_and_overrides():
    default = CorrelationSettings.from_config(config())
    assert default.proxies[:2] == ("sigeo", "zico") and "oneshot" in default.proxies and "flops" in default.proxies
    assert len(set(default.proxies)) == len(default.proxies) and default.seed == 5 and default.num_subnets == 100
    chosen = CorrelationSettings.from_config(config(proxies=["random", "zico", "sigeo"], seed=9))
    assert chosen.proxies == ("sigeo", "zico", "random") and chosen.seed == 9
    assert truth_settings(config()).epochs == 2 and truth_settings(config()).max_train_rows == 999
    assert truth_settings(config(epochs=1, max_train_rows=50)).max_train_rows == 50
    with pytest.raises(Exception, match="unknown proxy 'nope'"):
        CorrelationSettings.from_config(config(proxies=["nope"]))


def test_subnets_are_seeded_and_stay_put_when_the_study_grows():
    few = [a.hash() for a in subnets("small", 3, 7, 3)]
    assert few == [a.hash() for a in subnets("small", 3, 7, 6)][:3]
    assert len(set(few)) == 3 and few != [a.hash() for a in subnets("small", 3, 8, 3)]
    assert all(a.is_architecture() for a in subnets("full", 3, 7, 4))


def test_a_diverging_subnet_gets_null_metrics_instead_of_failing(tmp_path):
    fmt = get_format("criteo")
    generate(fmt, SyntheticSpec(rows=2000, seed=3, max_vocab=20), tmp_path / "raw" / "train.txt")
    prepare(fmt, tmp_path / "raw" / "train.txt", tmp_path / "data", PrepareSettings(seed=1, max_table_size=50))
    settings = FinalSettings(lr=1e12, batch_size=128, epochs=3, eval_batch_size=4096, max_train_rows=None,
                             checkpoint_minutes=1e-9, log_every=100, seed=1)  # fmt: skip
    arch = subnets("small", 2, 3, 1)[0]
    metrics = train_subnet(arch, tmp_path / "data", settings, tmp_path / "out", CPU)
    assert metrics["status"] == "diverged" and metrics["val"] is None and metrics["test"] is None
    assert isinstance(metrics["diverged"]["step"], int) and metrics["diverged"]["reason"]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["arch_hash"] == arch.hash()
    assert (tmp_path / "out" / "arch.json").exists() and (tmp_path / "out" / "model.pt").exists()
    assert not (tmp_path / "out" / "resume.pt").exists()


def synthetic_study(tmp_path, diverged: int | None = None) -> tuple[list, dict]:
    """Hand-made inputs: SiGeo ranks perfectly at 100 % and not at 0 %; `loss` equals the test loss."""
    rng = np.random.default_rng(0)
    test = rng.uniform(0.4, 0.6, 10)
    truth = []
    for i, value in enumerate(test):
        path = tmp_path / f"t{i}.json"
        loss = None if i == diverged else float(value)
        path.write_text(json.dumps({"arch_hash": f"h{i}", "val": {"logloss": loss}, "test": {"logloss": loss}}))
        truth.append(path)
    scores = {}
    for level, sigeo in ((0.0, rng.normal(size=10)), (1.0, -test)):
        zico = -test + rng.normal(0, 0.05, 10)
        frame = pd.DataFrame({"subnet": range(10), "hash": [f"h{i}" for i in range(10)], "sigeo": sigeo,
                              "zico": zico, "loss": test, "random": rng.random(10)})  # fmt: skip
        scores[level] = tmp_path / f"s{level}.csv"
        frame.to_csv(scores[level], index=False)
    return truth, scores


def test_table_parses_back_with_rows_columns_and_signs(tmp_path):
    truth, scores = synthetic_study(tmp_path)
    table = correlation_table(collect(truth, scores, ["random", "loss", "zico", "sigeo"]),
                              ["random", "loss", "zico", "sigeo"], n_resamples=100, seed=0)  # fmt: skip
    out = {ext: tmp_path / f"c.{ext}" for ext in ("csv", "md", "tex")}
    write_table(table, out["csv"], out["md"], out["tex"])
    back = pd.read_csv(out["csv"])
    assert list(back.columns) == ["level", "proxy", "higher_is_better", "spearman", "spearman_low", "spearman_high",
                                  "kendall", "kendall_low", "kendall_high", "n", "dropped"]  # fmt: skip
    assert list(back["proxy"]) == ["sigeo", "zico", "random", "loss"] * 2
    by = back.set_index(["level", "proxy"])
    assert by.loc[(1.0, "sigeo"), ["spearman", "kendall"]].tolist() == pytest.approx([1.0, 1.0])
    assert by.loc[(0.0, "loss"), "spearman"] == pytest.approx(1.0)  # lower is better, so positive
    assert not by.loc[(0.0, "loss"), "higher_is_better"] and by.loc[(1.0, "zico"), "spearman"] > 0.8
    assert md_header(out["md"])[:3] == ["level", "proxy", "higher_is_better"]
    assert "\\begin{tabular}" in out["tex"].read_text()
    check = write_summary(table, "demo / small", tmp_path / "s.md", tmp_path / "s.html")
    assert check.passed is True and "PASS" in check.text and "1.000" in check.text
    summary = (tmp_path / "s.md").read_text()
    assert "SiGeo ρ [95 % CI]" in summary and "ZiCo ρ [95 % CI]" in summary and "Fidelity check" in summary
    assert "<table" in (tmp_path / "s.html").read_text()


def md_header(path) -> list[str]:
    return [cell.strip() for cell in path.read_text().splitlines()[0].split("|")[1:-1]]


def test_fidelity_check_fails_or_is_undefined_honestly(tmp_path):
    truth, scores = synthetic_study(tmp_path)
    flipped = {0.0: scores[1.0], 1.0: scores[0.0]}
    table = correlation_table(collect(truth, flipped, ["sigeo"]), ["sigeo"], n_resamples=0, seed=0)
    check = fidelity_check(table)
    assert check.passed is False and "FAIL" in check.text
    assert fidelity_check(table[table["level"] == 1.0]).passed is None


def test_a_diverged_subnet_is_dropped_and_counted(tmp_path):
    truth, scores = synthetic_study(tmp_path, diverged=3)
    table = correlation_table(collect(truth, scores, ["sigeo"]), ["sigeo"], n_resamples=0, seed=0)
    assert (table["n"] == 9).all() and (table["dropped"] == 1).all()


def test_scores_of_other_subnets_are_refused(tmp_path):
    truth, scores = synthetic_study(tmp_path)
    frame = pd.read_csv(scores[0.0])
    frame.loc[2, "hash"] = "other"
    frame.to_csv(scores[0.0], index=False)
    with pytest.raises(ValueError, match="not the study's"):
        collect(truth, scores, ["sigeo"])


def test_warmup_plot_is_an_image_of_the_expected_size(tmp_path):
    truth, scores = synthetic_study(tmp_path)
    table = correlation_table(collect(truth, scores, ["sigeo", "zico", "loss", "random"]),
                              ["sigeo", "zico", "loss", "random"], n_resamples=50, seed=0)  # fmt: skip
    save_figure(warmup_figure(table, "demo / small"), tmp_path / "p.png", tmp_path / "p.pdf")
    image = mpimg.imread(tmp_path / "p.png")
    assert image.shape[:2] == (630, 1125)  # 7.5 × 4.2 in at 150 dpi
    assert image[..., :3].std() > 0.05
    assert (tmp_path / "p.pdf").read_bytes().startswith(b"%PDF")
