"""Search-result table and plot: cost from benchmark files, units per device, labels, the paper's points."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import pandas as pd
import pytest

from sigeo.report.plots import save_figure
from sigeo.report.results import (
    PAPER_POINTS,
    benchmark_seconds,
    cost_figure,
    method_label,
    paper_points,
    runs_from,
    search_results,
)
from sigeo.report.tables import write_table

# the header Snakemake 9 writes, and two rows as a benchmark with repeat(2) leaves them
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def benchmark(path, *seconds: float) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{s:.4f}\t0:00:{int(s):02d}\t812.5\t1900.1\t700.2\t720.9\t0.00\t1.20\t95.1\t{s * 1.8:.2f}\n"
                   for s in seconds)  # fmt: skip
    path.write_text(HEADER + rows)
    return str(path)


def test_benchmark_seconds_reads_column_s(tmp_path):
    assert benchmark_seconds(benchmark(tmp_path / "a.tsv", 51.57)) == pytest.approx(51.57)
    assert benchmark_seconds(benchmark(tmp_path / "b.tsv", 10.0, 14.0)) == pytest.approx(12.0)
    (tmp_path / "c.tsv").write_text(HEADER)
    with pytest.raises(ValueError, match="not a Snakemake benchmark"):
        benchmark_seconds(tmp_path / "c.tsv")


def test_method_labels():
    assert method_label("sigeo", 0.1) == "SiGeo @ 10 %"
    assert method_label("oneshot", 1.0) == "one-shot @ 100 %"
    assert method_label("random", 0.1) == "random"
    assert method_label("zico", 0.0, "full") == "ZiCo @ 0 % (Full)"


def write_runs(tmp_path, device: str = "cpu (2 cores)", bayes: bool = True):
    """Two levels × (sigeo, random) of one data set, with benchmark files of known seconds."""
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"bayes_logloss": {"test": 0.40}} if bayes else {"rows": {}}))
    keys, files = [], {k: [] for k in ("best", "warmup_metrics", "warmup_benchmark", "search_benchmark", "meta")}
    for lv, warm_s in (("0.0", 36.0), ("1.0", 3600.0)):
        warm = tmp_path / f"w{lv}" / "metrics.json"
        warm.parent.mkdir()
        warm.write_text(json.dumps({"device": device}))
        for proxy, test in (("sigeo", 0.45), ("random", 0.47)):
            best = tmp_path / f"w{lv}" / f"{proxy}.json"
            best.write_text(json.dumps({
                "rank": 1, "val": {"logloss": test - 0.01, "auc": 0.7}, "test": {"logloss": test, "auc": 0.69},
                "params": 5000, "params_dense": 1000, "flops_per_sample": 2e6,
            }))  # fmt: skip
            keys.append(("demo", "small", lv, proxy))
            files["best"].append(best)
            files["warmup_metrics"].append(warm)
            files["warmup_benchmark"].append(benchmark(tmp_path / "bench" / f"w{lv}.tsv", warm_s))
            files["search_benchmark"].append(benchmark(tmp_path / "bench" / f"w{lv}_{proxy}.tsv", 360.0))
            files["meta"].append(meta)
    return runs_from(keys, {"0.0": 0.0, "1.0": 1.0}, files)


def test_search_results_table_parses_back(tmp_path):
    table = search_results(write_runs(tmp_path))
    write_table(table, tmp_path / "r.csv", tmp_path / "r.md", tmp_path / "r.tex", digits=4)
    back = pd.read_csv(tmp_path / "r.csv")
    assert list(back.columns) == [
        "dataset", "space", "level", "proxy", "method", "rank", "val_logloss", "val_auc", "test_logloss", "test_auc",
        "params", "params_dense", "flops_per_sample", "warmup_s", "search_s", "device", "search_cost", "cost_unit",
        "bayes_logloss", "gap_to_bayes",
    ]  # fmt: skip
    assert list(back["method"]) == ["SiGeo @ 0 %", "random", "SiGeo @ 100 %", "random"]
    by = back.set_index(["level", "proxy"])
    assert by.loc[(1.0, "sigeo"), "search_cost"] == pytest.approx((3600 + 360) / 3600)  # CPU-hours
    assert by.loc[(1.0, "random"), "warmup_s"] == 0 and by.loc[(1.0, "random"), "search_cost"] == pytest.approx(0.1)
    assert (back["cost_unit"] == "CPU-hours").all()
    assert by.loc[(0.0, "sigeo"), "gap_to_bayes"] == pytest.approx(0.05)
    assert "\\begin{tabular}" in (tmp_path / "r.tex").read_text()
    assert "SiGeo @ 100 %" in (tmp_path / "r.md").read_text()


def test_gpu_runs_are_costed_in_gpu_days_and_real_data_has_no_bayes_gap(tmp_path):
    table = search_results(write_runs(tmp_path, device="NVIDIA H100 80GB HBM3", bayes=False))
    assert (table["cost_unit"] == "GPU-days").all()
    sigeo = table[(table["proxy"] == "sigeo") & (table["level"] == 1.0)].iloc[0]
    assert sigeo["search_cost"] == pytest.approx(3960 / 86400)
    assert table["gap_to_bayes"].isna().all()


def test_a_missing_benchmark_leaves_only_that_cost_empty(tmp_path, caplog):
    runs = write_runs(tmp_path)
    (tmp_path / "bench" / "w1.0_sigeo.tsv").unlink()
    table = search_results(runs).set_index(["level", "proxy"])
    assert pd.isna(table.loc[(1.0, "sigeo"), "search_cost"]) and table.loc[(1.0, "sigeo"), "test_logloss"] == 0.45
    assert table["search_cost"].notna().sum() == 3 and "w1.0_sigeo.tsv is missing" in caplog.text


def test_input_lists_must_match_the_runs():
    with pytest.raises(ValueError, match="2 best files for 1 runs"):
        runs_from([("d", "small", "0.0", "sigeo")], {"0.0": 0.0}, {"best": ["a", "b"]})


def test_paper_points_only_for_real_paper_data():
    assert paper_points("criteo", synthetic=True) is None
    points = paper_points("criteo", synthetic=False)
    assert len(points) == 10 and ("SiGeo @ Small", 0.1, 0.4396) in points
    assert {name for name, _, _ in PAPER_POINTS["kdd"]} >= {"SiGeo @ Small", "ZiCo @ Full", "AutoCTR"}


@pytest.mark.parametrize("paper", [False, True], ids=["synthetic", "with-paper-panel"])
def test_cost_plot_is_an_image_of_the_expected_size(tmp_path, paper):
    table = search_results(write_runs(tmp_path))
    fig = cost_figure(table, "demo", paper_points("criteo", synthetic=not paper))
    save_figure(fig, tmp_path / "c.png", tmp_path / "c.pdf")
    image = mpimg.imread(tmp_path / "c.png")
    assert image.shape[:2] == (780, 1680 if paper else 840)  # (5.2 in, 5.6 in per panel) at 150 dpi
    assert image[..., :3].std() > 0.05
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")
