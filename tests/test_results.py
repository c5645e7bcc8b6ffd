"""Search-result table, summary and plot: cost from benchmark files, units per device, labels, the paper's
points, repeats' mean and spread, claim (d)'s verdicts, baselines (the logistic regression by hand, the
published NASRecNets built on the demo's tables), and the DAG that plans repeats and baselines."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import default_settings, run_snakemake, tiny_config, write_config

from sigeo.baselines import LogisticRegression, train_baseline
from sigeo.config import baseline_names, published_architecture, repeat_index, repeat_seed, repeat_segment
from sigeo.io import TrainingOutputs
from sigeo.report.plots import save_figure
from sigeo.report.results import (
    PAPER_POINTS,
    baselines_from,
    benchmark_seconds,
    cost_figure,
    method_label,
    method_summary,
    paper_points,
    runs_from,
    search_claim,
    search_results,
    search_summary,
)
from sigeo.report.tables import write_table
from sigeo.space.choice import Architecture
from sigeo.space.subnet import StandaloneNet
from sigeo.train import flops_per_sample, param_count

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
                "params": 5000, "params_dense": 1000, "flops_2x_all_blocks": 2e6, "mflops_nasrec": 0.6, "diverged": 0,
            }))  # fmt: skip
            keys.append(("demo", "small", lv, proxy, 0))
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
        "dataset", "kind", "space", "level", "proxy", "repeat", "method", "rank", "val_logloss", "val_auc",
        "test_logloss", "test_auc", "params", "params_dense", "flops_2x_all_blocks", "mflops_nasrec",
        "found_model",
        "test_logloss_train_only", "test_auc_train_only", "test_logloss_trainval", "test_auc_trainval", "warmup_s",
        "search_s", "train_s", "device", "cost", "cost_unit", "bayes_logloss", "gap_to_bayes", "learned", "diverged",
    ]  # fmt: skip
    # a best.json of a train-only selection: its test figures are the train-only model's, no retraining
    assert (back["found_model"] == "train").all() and back["test_logloss_trainval"].isna().all()
    assert (back["test_logloss_train_only"] == back["test_logloss"]).all()
    assert list(back["method"]) == ["SiGeo @ 0 %", "random", "SiGeo @ 100 %", "random"]
    assert list(back["mflops_nasrec"]) == [0.6] * 4 and list(back["flops_2x_all_blocks"]) == [2e6] * 4
    by = back.set_index(["level", "proxy"])
    assert by.loc[(1.0, "sigeo"), "cost"] == pytest.approx((3600 + 360) / 3600)  # CPU-hours
    assert by.loc[(1.0, "random"), "warmup_s"] == 0 and by.loc[(1.0, "random"), "cost"] == pytest.approx(0.1)
    assert (back["cost_unit"] == "CPU-hours").all()
    assert by.loc[(0.0, "sigeo"), "gap_to_bayes"] == pytest.approx(0.05)
    assert "\\begin{tabular}" in (tmp_path / "r.tex").read_text()
    assert "SiGeo @ 100 %" in (tmp_path / "r.md").read_text()


def test_a_retrained_winner_is_the_rows_found_model_with_both_results_beside(tmp_path):
    runs = write_runs(tmp_path)[:1]
    doc = json.loads(Path(runs[0].best).read_text())
    train_only = {"trained_on": "train", "test": doc["test"]}
    trainval = {"trained_on": "train+val", "status": "ok", "test": {"logloss": 0.44, "auc": 0.71}}
    Path(runs[0].best).write_text(json.dumps({**doc, "found_model": "train+val", "test": trainval["test"],
                                              "train_only": train_only, "trainval": trainval}))  # fmt: skip
    row = search_results(runs).iloc[0]
    assert row["found_model"] == "train+val" and row["test_logloss"] == 0.44 and row["test_auc"] == 0.71
    assert (row["test_logloss_trainval"], row["test_auc_trainval"]) == (0.44, 0.71)
    assert (row["test_logloss_train_only"], row["test_auc_train_only"]) == (0.45, 0.69)
    assert row["gap_to_bayes"] == pytest.approx(0.04)  # of the found model
    summary = method_summary(search_results(runs)).iloc[0]
    assert summary["found_model"] == "train+val"
    assert (summary["test_logloss_train_only"], summary["test_logloss_trainval"]) == (0.45, 0.44)


def test_gpu_runs_are_costed_in_gpu_days_and_real_data_has_no_bayes_gap(tmp_path):
    table = search_results(write_runs(tmp_path, device="NVIDIA H100 80GB HBM3", bayes=False))
    assert (table["cost_unit"] == "GPU-days").all()
    sigeo = table[(table["proxy"] == "sigeo") & (table["level"] == 1.0)].iloc[0]
    assert sigeo["cost"] == pytest.approx(3960 / 86400)
    assert table["gap_to_bayes"].isna().all()


def test_a_missing_benchmark_leaves_only_that_cost_empty(tmp_path, caplog):
    runs = write_runs(tmp_path)
    (tmp_path / "bench" / "w1.0_sigeo.tsv").unlink()
    table = search_results(runs).set_index(["level", "proxy"])
    assert pd.isna(table.loc[(1.0, "sigeo"), "cost"]) and table.loc[(1.0, "sigeo"), "test_logloss"] == 0.45
    assert table["cost"].notna().sum() == 3 and "w1.0_sigeo.tsv is missing" in caplog.text


def test_input_lists_must_match_the_runs():
    with pytest.raises(ValueError, match="2 best files for 1 runs"):
        runs_from([("d", "small", "0.0", "sigeo", 0)], {"0.0": 0.0}, {"best": ["a", "b"]})


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


# --- repeats and claim (d) -------------------------------------------------------------------------
T_975_1 = 12.706204736174698  # Student t, 97.5 % quantile, 1 degree of freedom (two repeats)


def plant_claim(tmp_path, dataset: str, sigeo: list[float], oneshot: list[float], **warm) -> list:
    """SiGeo @ 10 % and one-shot @ 100 % searched once per repeat, with the given test log losses.

    Warm-ups cost 36 s (10 %) and 3600 s (100 %); the search of repeat r costs 100 + 10 r s for SiGeo and
    100 + 20 r s for one-shot, so one-shot costs 3564 + 10 r s more.
    """
    root = tmp_path / dataset
    (root / "meta.json").parent.mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps({"bayes_logloss": {"test": 0.40}}))
    keys, files = [], {k: [] for k in ("best", "warmup_metrics", "warmup_benchmark", "search_benchmark", "meta")}
    for proxy, level, losses, warm_s, step in (
        ("sigeo", "0.1", sigeo, 36.0, 10),
        ("oneshot", "1.0", oneshot, 3600.0, 20),
    ):
        metrics = root / f"w{level}.json"
        metrics.write_text(json.dumps({"device": "cpu (2 cores)", **warm.get(level, {})}))
        for r, loss in enumerate(losses):
            best = root / f"{proxy}_r{r}.json"
            best.write_text(json.dumps({
                "rank": 0, "val": {"logloss": loss, "auc": 0.7}, "test": {"logloss": loss, "auc": 0.7 - r / 100},
                "params": 1000 + r, "params_dense": 100, "flops_2x_all_blocks": 10.0, "mflops_nasrec": 0.5,
                "diverged": r,
            }))  # fmt: skip
            keys.append((dataset, "small", level, proxy, r))
            files["best"].append(best)
            files["warmup_metrics"].append(metrics)
            files["warmup_benchmark"].append(benchmark(root / f"w{level}.tsv", warm_s))
            files["search_benchmark"].append(benchmark(root / f"{proxy}_r{r}.tsv", 100.0 + step * r))
            files["meta"].append(root / "meta.json")
    return runs_from(keys, {"0.1": 0.1, "1.0": 1.0}, files)


def test_repeats_give_mean_and_spread_per_method(tmp_path):
    runs = plant_claim(tmp_path, "demo", [0.450, 0.454], [0.449, 0.4528], **{"0.1": {"learned": False}})
    table = search_results(runs)
    assert list(table["repeat"]) == [0, 1, 0, 1] and (table["kind"] == "search").all()
    methods = method_summary(table).set_index("method")
    sigeo = methods.loc["SiGeo @ 10 %"]
    assert sigeo["repeats"] == 2 and sigeo["test_logloss"] == pytest.approx(0.452)
    assert sigeo["test_logloss_sd"] == pytest.approx(0.004 / 2**0.5)  # |x1 - x2| / sqrt(2)
    assert sigeo["test_auc"] == pytest.approx(0.695) and sigeo["test_auc_sd"] == pytest.approx(0.01 / 2**0.5)
    assert sigeo["cost"] == pytest.approx((136 + 146) / 2 / 3600) and sigeo["cost_sd"] == pytest.approx(
        10 / 2**0.5 / 3600
    )
    assert sigeo["gap_to_bayes"] == pytest.approx(0.052) and sigeo["diverged"] == 1  # 0 + 1 planted
    assert sigeo["learned"] is False and pd.isna(methods.loc["one-shot @ 100 %", "learned"])  # not recorded there


@pytest.mark.parametrize(
    ("sigeo", "oneshot", "status"),
    [
        ([0.450, 0.452], [0.449, 0.4508], "PASS"),  # SiGeo 0.0011 worse on average, tightly: within 0.005
        ([0.480, 0.482], [0.450, 0.451], "FAIL"),  # 0.0305 worse, tightly: beyond the margin
        ([0.452, 0.460], [0.450, 0.450], "INCONCLUSIVE"),  # 0.006 worse, but the interval spans -0.005
        ([0.450], [0.449], "INCONCLUSIVE"),  # one repeat: no interval
    ],
    ids=["pass", "fail", "interval-spans-margin", "one-repeat"],
)
def test_claim_d_verdict_from_the_paired_interval(tmp_path, sigeo, oneshot, status):
    table = search_results(plant_claim(tmp_path, "demo", sigeo, oneshot))
    verdict = search_claim(table, margin=0.005)
    assert verdict.status == status, verdict.line()
    gains = [o - s for s, o in zip(sigeo, oneshot, strict=True)]
    numbers = verdict.numbers
    assert numbers["repeats"] == len(gains) and numbers["margin"] == 0.005
    assert numbers["logloss_oneshot_minus_sigeo"] == pytest.approx(sum(gains) / len(gains))
    if len(gains) == 2:
        half = T_975_1 * abs(gains[0] - gains[1]) / 2  # t * sd / sqrt(2), sd = |g1 - g2| / sqrt(2)
        assert numbers["low"] == pytest.approx(numbers["logloss_oneshot_minus_sigeo"] - half)
        assert numbers["high"] == pytest.approx(numbers["logloss_oneshot_minus_sigeo"] + half)
        # cost saved per repeat: 3564 s and 3574 s, interval 3569 ± t * 5 s, well above 0
        assert numbers["cost_saved_low"] == pytest.approx((3569 - T_975_1 * 5) / 3600)
    else:
        assert math.isnan(numbers["low"]) and "undefined" in verdict.reason
    assert f"**{status}**" in verdict.line()


def test_claim_d_fails_when_sigeo_is_not_cheaper(tmp_path):
    """Equal log losses, but SiGeo's warm-up planted as the expensive one: the cost part fails the claim."""
    runs = plant_claim(tmp_path, "demo", [0.450, 0.451], [0.449, 0.4505])
    swapped = [dataclasses.replace(r, warmup_benchmark=runs[2 if r.proxy == "sigeo" else 0].warmup_benchmark)
               for r in runs]  # fmt: skip
    verdict = search_claim(search_results(swapped), margin=0.005)
    assert (
        verdict.status == "FAIL"
        and "log loss: interval above" in verdict.reason
        and "cost: interval below" in verdict.reason
    )


def test_summary_prints_each_data_sets_verdict_and_the_baselines(tmp_path):
    runs = [
        *plant_claim(tmp_path, "good", [0.450, 0.452], [0.449, 0.4508]),
        *plant_claim(tmp_path, "bad", [0.480, 0.482], [0.450, 0.451]),
        *plant_claim(tmp_path, "unsure", [0.452, 0.460], [0.450, 0.450]),
    ]
    lr = tmp_path / "lr"
    lr.mkdir()
    (lr / "metrics.json").write_text(json.dumps({
        "baseline": "logreg", "device": "cpu (2 cores)", "val": {"logloss": 0.47, "auc": 0.68},
        "test": {"logloss": 0.471, "auc": 0.679}, "params": 60, "params_dense": 14, "flops_2x_all_blocks": 26.0,
    }))  # fmt: skip
    (lr / "nasrec.json").write_text(json.dumps({
        "status": "diverged", "diverged": {"step": 3, "reason": "non-finite"}, "device": "cpu (2 cores)",
        "val": None, "test": None, "params": 900, "params_dense": 800, "flops_2x_all_blocks": 5e5, "mflops_nasrec": 0.2,
    }))  # fmt: skip
    baselines = baselines_from(
        [("good", "logreg"), ("good", "nasrec_small")],
        {"metrics": [lr / "metrics.json", lr / "nasrec.json"],
         "benchmark": [benchmark(lr / "lr.tsv", 18.0), benchmark(lr / "nasrec.tsv", 90.0)],
         "meta": [tmp_path / "good" / "meta.json"] * 2},
    )  # fmt: skip
    table = search_results(runs, baselines)
    base = table[table["kind"] == "baseline"].set_index("proxy")
    assert list(base["method"]) == ["logistic regression (baseline)", "NASRecNet Small (published, baseline)"]
    assert base.loc["logreg", "cost"] == pytest.approx(18.0 / 3600) and base.loc["logreg", "train_s"] == 18.0
    assert base.loc["logreg", "gap_to_bayes"] == pytest.approx(0.071) and base.loc["logreg", "diverged"] == 0
    assert math.isnan(base.loc["nasrec_small", "test_logloss"]) and base.loc["nasrec_small", "diverged"] == 1
    assert math.isnan(base.loc["logreg", "mflops_nasrec"]) and base.loc["nasrec_small", "mflops_nasrec"] == 0.2
    summary = search_summary(table, margin=0.005)
    sections = dict(re.findall(r"## (\w+), small space\n\nClaim \(d\): .*?\*\*(\w+)\*\*", summary))
    assert sections == {"good": "PASS", "bad": "FAIL", "unsure": "INCONCLUSIVE"}
    good = summary.split("## good")[1].split("## bad")[0]
    assert "logistic regression (baseline)" in good and "0.4710" in good and "NASRecNet Small" in good
    assert "logistic regression" not in summary.split("## bad")[1]  # baselines only where they were trained
    assert "Repeats per search: 2" in summary and "Claim margin: 0.005" in summary


def test_cost_plot_draws_repeats_and_baselines(tmp_path):
    table = search_results(plant_claim(tmp_path, "demo", [0.450, 0.454], [0.449, 0.4528]))
    fig = cost_figure(table, "demo", None)
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["Bayes log loss (teacher)", "one-shot @ 100 %", "SiGeo @ 10 %"]
    assert "mean ± SD of 2 repeats" in ax.get_title()
    save_figure(fig, tmp_path / "c.png")


# --- baselines -----------------------------------------------------------------------------------
def test_logistic_regression_has_one_weight_per_id_and_computes_the_logit_by_hand():
    model = LogisticRegression(num_dense=3, table_sizes=[4, 2])
    assert param_count(model) == {"params": 4 + 2 + 3 + 1, "params_dense": 3 + 1}
    dense = torch.tensor([[1.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    ids = torch.tensor([[2, 1], [0, 0]])
    assert torch.equal(model(dense, ids), torch.zeros(2))  # zero initialisation
    with torch.no_grad():
        model.dense.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
        model.dense.bias.fill_(0.25)
        model.sparse.weight.copy_(torch.tensor([[0.1], [0.2], [0.3], [0.4], [1.0], [2.0]]))
    # row 1: 1 - 2 + 1 + 0.25 + v0[2] (0.3) + v1[1] (row 4 + 1: 2.0); row 2: 0.25 + v0[0] (0.1) + v1[0] (1.0)
    assert torch.allclose(model(dense, ids), torch.tensor([2.55, 1.35]))
    model(dense, ids).sum().backward()
    grad = model.sparse.weight.grad
    assert grad.is_sparse and torch.equal(grad.to_dense().squeeze(1), torch.tensor([1.0, 0, 1, 0, 1, 1]))
    assert flops_per_sample(model, (dense, ids), lambda b: model(b[0], b[1])) == 2 * 3  # the dense part's product


@pytest.fixture(scope="module")
def separable(tmp_path_factory) -> Path:
    """3 dense and 2 categorical features; the label is 1 exactly when the first field's id is odd."""
    root = tmp_path_factory.mktemp("lr-data")
    rng = np.random.default_rng(0)
    positive_rate = {}
    for split, rows in {"train": 2048, "val": 512, "test": 512}.items():
        (root / split).mkdir()
        sparse = np.stack([rng.integers(0, 6, rows), rng.integers(0, 3, rows)], axis=1)
        label = (sparse[:, 0] % 2).astype(np.float32)
        np.save(root / split / "dense.npy", rng.normal(size=(rows, 3)).astype(np.float32))
        np.save(root / split / "sparse.npy", sparse.astype(np.int64))
        np.save(root / split / "label.npy", label)
        positive_rate[split] = float(label.mean())
    meta = {"table_sizes": [6, 3], "dense_features": ["d0", "d1", "d2"], "sparse_features": ["c0", "c1"],
            "positive_rate": positive_rate}  # fmt: skip
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def test_logreg_baseline_trains_like_a_final_training_and_keeps_its_weights(separable, tmp_path, one_thread):
    settings = replace(default_settings().final, lr=0.5, batch_size=128, epochs=2, eval_batch_size=512,
                       max_train_rows=None, checkpoint_minutes=60, log_every=8, seed=1, schedule="cosine")  # fmt: skip
    metrics = train_baseline("logreg", separable, settings, TrainingOutputs.in_folder(tmp_path), torch.device("cpu"))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["baseline"] == "logreg" and saved["steps"] == 2 * 2048 // 128
    assert saved["params"] == 6 + 3 + 3 + 1 and saved["params_dense"] == 4
    assert metrics["test"]["auc"] == 1.0 and metrics["test"]["logloss"] < 0.25  # base rate: ln 2
    model = LogisticRegression(3, [6, 3])
    model.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    weights = model.sparse.weight.detach().squeeze(1)[:6]
    assert (weights[1::2] > weights[0::2].max()).all()  # odd ids of field 0 push towards a click
    with pytest.raises(ValueError, match="unknown baseline 'svm'"):
        train_baseline("svm", separable, settings, TrainingOutputs.in_folder(tmp_path), torch.device("cpu"))


@pytest.mark.parametrize("space", ["small", "full"])
def test_published_nasrecnets_build_on_the_demos_tables(space, demo_config):
    """Every format's published architecture (7 blocks, widths up to 1024) builds as a StandaloneNet on
    Criteo-format inputs with the demo's table sizes and predicts one finite logit per row."""
    cfg = {**demo_config, "spaces": [space], "search": {"baselines": ["logreg", "nasrec"]}}
    assert baseline_names(cfg) == ["logreg", f"nasrec_{space}"]
    sizes = [demo_config["datasets"]["demo"]["synthetic"]["max_vocab"] + 1] * 26
    torch.manual_seed(0)
    for fmt in ("criteo", "avazu", "kdd"):
        path = published_architecture(fmt, space)
        arch = Architecture.load(path)
        assert arch.space.name == space and f"_{fmt}_" in path.name and arch.num_blocks == 7
        net = StandaloneNet(arch, 13, sizes)
        out = net(torch.rand(4, 13), torch.randint(0, sizes[0], (4, 26)))
        assert out.shape == (4,) and torch.isfinite(out).all()
    assert published_architecture("tabular", space) == published_architecture("criteo", space)


def test_repeat_paths_and_seeds():
    assert [repeat_segment(r) for r in range(3)] == ["", "/r1", "/r2"]
    assert [repeat_index(repeat_segment(r)) for r in range(12)] == list(range(12))
    seeds = [repeat_seed(2023, r) for r in range(4)]
    assert seeds[0] == 2023 and len(set(seeds)) == 4
    assert seeds[1] == int(np.random.SeedSequence((2023, 1)).generate_state(1)[0]) == repeat_seed(2023, 1)
    assert repeat_seed(7, 1) != seeds[1]


# --- the DAG ---------------------------------------------------------------------------------------
def dry_run(workdir: Path) -> tuple[str, dict[str, int]]:
    """A dry run's output and the jobs it plans, by rule (its job-stats table)."""
    out = run_snakemake(workdir, "-n").stdout
    return out, {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M) if m[1] != "total"}


@pytest.mark.slow
def test_dag_plans_every_repeat_and_baseline(tmp_path, demo_config):
    config = tiny_config(demo_config)
    config["theory"]["mnist_dir"] = None
    config["proxies"] = ["sigeo", "oneshot"]
    config["search"] = {**config["search"], "repeats": 3, "levels_by_proxy": {"oneshot": [0.5]}}
    write_config(tmp_path, config)
    out, jobs = dry_run(tmp_path)
    assert {rule: jobs[rule] for rule in ("search", "export", "train_final", "select_best", "train_baseline")} == {
        "search": 2 * 3, "export": 2 * 3, "train_final": 2 * 3, "select_best": 2 * 3, "train_baseline": 2,
    }  # fmt: skip
    for path in ("results/final/tiny/small/w0.5/sigeo/best.json", "results/final/tiny/small/w0.5/oneshot/r2/best.json",
                 "results/search/tiny/small/w0.5/sigeo/r1/top/0.json", "results/baselines/tiny/nasrec_small/model.pt",
                 "results/baselines/tiny/logreg/metrics.json", "results/tables/search_summary.md"):  # fmt: skip
        assert path in out, path
    config["search"] = {**config["search"], "repeats": 1, "baselines": []}
    write_config(tmp_path, config)
    out, jobs = dry_run(tmp_path)
    assert jobs["search"] == 2 and "train_baseline" not in jobs and "/r1/" not in out
