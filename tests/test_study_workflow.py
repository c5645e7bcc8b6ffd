"""The correlation-study and search-report rules end to end on a tiny config, and what edits rerun."""

from __future__ import annotations

import json
import re

import matplotlib.image as mpimg
import pandas as pd
import pytest
from conftest import run_snakemake, tiny_config, write_config
from scipy import stats

TARGETS = (
    "results/tables/correlation_tiny_small.csv",
    "results/tables/search_results.csv",
    "results/plots/tiny_logloss_vs_cost.png",
)


def planned(workdir) -> dict[str, int]:
    """Jobs a dry run would start, by rule."""
    out = run_snakemake(workdir, "-n", *TARGETS).stdout
    stats_table = out[out.index("Job stats:") :]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats_table, re.M) if m[1] != "total"}


@pytest.mark.slow
def test_study_and_report_rules_run_and_rerun_only_what_changed(tmp_path, demo_config):
    config = tiny_config(demo_config)
    write_config(tmp_path, config)
    run_snakemake(tmp_path, "--cores", "2", *TARGETS)

    # ground truth and scores: one job per subnet, one per level
    for i in range(3):
        truth = json.loads((tmp_path / f"results/correlation/tiny/small/subnets/{i}/metrics.json").read_text())
        assert 0 < truth["test"]["logloss"] < 5 and truth["steps"] == 2
        assert (tmp_path / f"benchmarks/correlation/tiny/small/train_subnet/{i}.tsv").exists()
    data = pd.read_csv(tmp_path / "results/correlation/tiny/small/data.csv")
    assert sorted(data["level"].unique()) == [0.0, 0.5] and len(data) == 6
    assert not data.loc[data["level"] == 0.0, "sigeo"].equals(
        data.loc[data["level"] == 0.5, "sigeo"].reset_index(drop=True)
    )

    # the table's rank statistics are those of the real vectors, with each proxy's sign
    table = pd.read_csv(tmp_path / TARGETS[0])
    assert list(table["proxy"]) == ["sigeo", "zico", "params", "random"] * 2 and (table["n"] == 3).all()
    top = data[data["level"] == 0.5]
    row = table.set_index(["level", "proxy"])
    assert row.loc[(0.5, "params"), "spearman"] == pytest.approx(-stats.spearmanr(top["params"], top["test_loss"])[0])
    assert row.loc[(0.5, "sigeo"), "kendall"] == pytest.approx(-stats.kendalltau(top["sigeo"], top["test_loss"])[0])
    summary = (tmp_path / "results/tables/correlation_tiny_small_summary.md").read_text()
    assert "Fidelity check: SiGeo's Spearman ρ at 50 %" in summary and ("PASS" in summary or "FAIL" in summary)
    assert "fidelity check" in (tmp_path / "logs/correlation/tiny/small/table.log").read_text()
    plot = mpimg.imread(tmp_path / "results/plots/correlation_vs_warmup_tiny_small.png")
    assert plot.shape[:2] == (630, 1125)

    # search results: a row per searched level and proxy, costs from the benchmark files, the gap to Bayes
    results = pd.read_csv(tmp_path / TARGETS[1])
    assert list(results["method"]) == ["SiGeo @ 50 %"]
    assert (results["cost_unit"] == "CPU-hours").all() and (results["search_cost"] > 0).all()
    bench = pd.read_csv(tmp_path / "benchmarks/warmup/tiny/small/w0.5.tsv", sep="\t")
    assert results.loc[0, "warmup_s"] == pytest.approx(bench["s"].iloc[0])
    assert (results["gap_to_bayes"] > 0).all()
    assert mpimg.imread(tmp_path / TARGETS[2]).shape[:2] == (780, 840)  # synthetic data: no paper panel
    assert (tmp_path / "results/plots/tiny_logloss_vs_cost.pdf").read_bytes().startswith(b"%PDF")

    run_snakemake(tmp_path, "--report", "report.html", *TARGETS)
    report = (tmp_path / "report.html").read_text()
    assert "Correlation study" in report and "Search results" in report

    # a new proxy rescores every level and one more subnet adds one training: the trained subnets stay up to date
    config["correlation"]["proxies"].append("flops")
    config["correlation"]["num_subnets"] = 4
    write_config(tmp_path, config)
    assert planned(tmp_path) == {"train_subnet": 1, "score_subnets": 2, "correlation_table": 1}
