"""The whole default DAG on the tiny config, twice from scratch: every output is there and parses, a
second run has nothing to do, deleting an intermediate reruns exactly its dependents, the report holds
every table and plot, and the two runs' tables are byte-identical (Reliability: determinism)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, run_snakemake, tiny_config, write_config
from test_theory_workflow import write_tiny_mnist

pytestmark = pytest.mark.slow

#: Wall-clock costs measured by Snakemake's benchmark files: the only columns that may differ between runs.
COST_COLUMNS = ["warmup_s", "search_s", "search_cost"]
EXPORTED = "results/search/tiny/small/w0.5/sigeo/top/0.json"


def whole_run(workdir: Path) -> Path:
    workdir.mkdir()
    write_tiny_mnist(workdir / "mnist", np.random.default_rng(0))
    config = tiny_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    config["theory"]["mnist_dir"] = str(workdir / "mnist")
    write_config(workdir, config)
    run_snakemake(workdir, "--cores", "2")
    return workdir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """The default target run twice, each in a fresh folder."""
    root = tmp_path_factory.mktemp("dag")
    return whole_run(root / "a"), whole_run(root / "b")


def planned(workdir: Path) -> dict[str, int]:
    out = run_snakemake(workdir, "-n", "--quiet", "rules").stdout
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M) if m[1] != "total"}


def test_every_output_exists_and_parses(runs):
    workdir = runs[0]
    tables = sorted((workdir / "results/tables").glob("*.csv"))
    assert {t.stem for t in tables} >= {"theory_correlation", "correlation_tiny_small", "search_results"}
    for table in tables:
        frame = pd.read_csv(table)
        assert len(frame) > 0, table
        assert (table.with_suffix(".md")).read_text().count("|") > len(frame), table
        assert "\\begin{tabular}" in table.with_suffix(".tex").read_text(), table
    plots = sorted((workdir / "results/plots").glob("*.png"))
    assert {p.stem for p in plots} >= {
        "theory_scatter",
        "theory_correlation_vs_warmup",
        "correlation_vs_warmup_tiny_small",
        "tiny_logloss_vs_cost",
    }
    for plot in plots:
        assert mpimg.imread(plot).shape[0] > 300, plot
        assert plot.with_suffix(".pdf").read_bytes().startswith(b"%PDF"), plot
    best = json.loads((workdir / "results/final/tiny/small/w0.5/sigeo/best.json").read_text())
    assert best["selected_by"] == "val logloss" and 0 < best["test"]["logloss"] < 5
    for level in ("0.0", "0.5"):
        metrics = json.loads((workdir / f"results/supernet/tiny/small/w{level}/metrics.json").read_text())
        assert metrics["device"].startswith("cpu")
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(run_snakemake(workdir, "-n"))


def test_two_runs_from_scratch_give_identical_tables(runs):
    a, b = runs
    names = sorted(p.relative_to(a) for p in (a / "results/tables").iterdir())
    assert names == sorted(p.relative_to(b) for p in (b / "results/tables").iterdir())
    for name in names:
        if name.name.startswith("search_results"):
            continue  # carries measured wall-clock costs; compared below without them
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    costs = [pd.read_csv(d / "results/tables/search_results.csv") for d in runs]
    pd.testing.assert_frame_equal(costs[0].drop(columns=COST_COLUMNS), costs[1].drop(columns=COST_COLUMNS))
    assert (costs[0]["search_cost"] > 0).all()
    for name in ("results/search/tiny/small/w0.5/sigeo/records.csv", EXPORTED):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_report_holds_every_table_and_plot(runs):
    workdir = runs[0]
    run_snakemake(workdir, "--report", "report.html")
    report = (workdir / "report.html").read_text()
    for caption in ("Theory study", "Correlation study", "Search results", "fidelity"):
        assert caption.lower() in report.lower(), caption
    for plot in (workdir / "results/plots").glob("*.png"):
        assert plot.name in report, plot.name


def test_deleting_an_intermediate_reruns_only_its_dependents(runs):
    workdir = runs[1]
    before = (workdir / EXPORTED).read_bytes()
    (workdir / EXPORTED).unlink()
    assert planned(workdir) == {
        "export": 1,
        "train_final": 1,
        "select_best": 1,
        "search_results": 1,
        "search_plot": 1,
        "all": 1,
    }
    run_snakemake(workdir, "--cores", "2")
    assert (workdir / EXPORTED).read_bytes() == before
    assert planned(workdir) == {}
