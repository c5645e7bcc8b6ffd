"""The whole default DAG on the tiny config, run twice from scratch: every output is there with the
values it should hold (theory study, correlation study, search results, plots, report), a second run
has nothing to do, deleting an intermediate or editing the config reruns exactly what depends on it,
and the two runs' tables are byte-identical (Reliability: determinism)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT, run_snakemake, tiny_config, write_config, write_tiny_mnist
from scipy import stats

from sigeo.predict import load_model
from sigeo.space.choice import Architecture, get_space, sample_architecture

pytestmark = pytest.mark.slow

#: Wall-clock costs read from Snakemake's benchmark files: the only table columns that may differ between runs.
COST_COLUMNS = ["warmup_s", "search_s", "train_s", "cost"]
EXPORTED = "results/search/tiny/small/w0.5/sigeo/top/0.json"


def config_for(workdir: Path) -> dict:
    """The tiny config, the winner retrained on train + val (the paper's protocol) as the found model."""
    config = tiny_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    config["theory"]["mnist_dir"] = str(workdir / "mnist")
    config["final"]["retrain_on_trainval"] = True
    return config


def whole_run(workdir: Path, env: dict[str, str] | None = None) -> Path:
    workdir.mkdir()
    write_tiny_mnist(workdir / "mnist", np.random.default_rng(0))
    write_config(workdir, config_for(workdir))
    run_snakemake(workdir, "--cores", "2", env=env)
    return workdir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """The default target run twice, each in a fresh folder; the second with ``CUDA_VISIBLE_DEVICES=""``."""
    root = tmp_path_factory.mktemp("dag")
    return whole_run(root / "a"), whole_run(root / "b", env={"CUDA_VISIBLE_DEVICES": ""})


def planned(workdir: Path) -> dict[str, int]:
    """Jobs a dry run of the default target would start, by rule."""
    out = run_snakemake(workdir, "-n", "--quiet", "rules").stdout
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", out, re.M) if m[1] != "total"}


def test_every_table_and_plot_exists_and_parses(runs):
    workdir = runs[0]
    tables = sorted((workdir / "results/tables").glob("*.csv"))
    assert {t.stem for t in tables} >= {"theory_correlation", "correlation_tiny_small", "search_results"}
    for table in tables:
        frame = pd.read_csv(table)
        assert len(frame) > 0, table
        assert table.with_suffix(".md").read_text().count("|") > len(frame), table
    for name in ("theory_correlation", "correlation_tiny_small", "search_results"):
        assert "\\begin{tabular}" in (workdir / f"results/tables/{name}.tex").read_text(), name
    plots = sorted((workdir / "results/plots").glob("*.png"))
    assert {p.stem for p in plots} == {
        "theory_scatter",
        "theory_correlation_vs_warmup",
        "correlation_vs_warmup_tiny_small",
        "tiny_logloss_vs_cost",
    }
    for plot in plots:
        assert mpimg.imread(plot).shape[0] > 300, plot
        assert plot.with_suffix(".pdf").read_bytes().startswith(b"%PDF"), plot
    for level in ("0.0", "0.5"):
        metrics = json.loads((workdir / f"results/supernet/tiny/small/w{level}/metrics.json").read_text())
        assert metrics["device"].startswith("cpu")
    best = json.loads((workdir / "results/final/tiny/small/w0.5/sigeo/best.json").read_text())
    assert best["selected_by"] == "val logloss" and 0 < best["test"]["logloss"] < 5
    again = run_snakemake(workdir, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_with_no_visible_gpu_every_gpu_rule_runs_on_cpu_and_says_so(runs):
    logs = runs[1] / "logs"
    gpu_jobs = [
        *logs.glob("warmup/**/*.log"),
        *logs.glob("search/**/*.log"),
        *logs.glob("train_final/**/*.log"),
        *logs.glob("retrain_best/**/*.log"),
        *logs.glob("correlation/*/*/train_subnet/*.log"),
        *logs.glob("correlation/*/*/score_subnets/*.log"),
    ]
    assert len(gpu_jobs) == 2 + 1 + 1 + 1 + 3 * 2 + 2  # the correlation subnets train with two seeds
    for log in gpu_jobs:
        assert "no GPU visible; running on CPU" in log.read_text(), log


def test_theory_study(runs):
    workdir = runs[0]
    table = pd.read_csv(workdir / "results/tables/theory_correlation.csv")
    assert list(table["level"]) == [0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0] and (table["n"] == 9).all()
    assert table.filter(like="_spearman").notna().all().all()
    theory_runs = pd.read_csv(workdir / "results/theory/runs.csv")
    assert sorted(theory_runs["width"].unique()) == [2, 4, 8] and len(theory_runs) == 3 * 3 * 7
    for width in (2, 4, 8):  # one job per width
        assert (workdir / f"benchmarks/theory/h{width}.tsv").exists()
    assert "fidelity check" in (workdir / "logs/theory/aggregate.log").read_text()
    html = (workdir / "results/tables/theory_vs_readme.html").read_text()
    assert "<table" in html and "Fidelity checks" in html and "0.71" in html
    scatter = mpimg.imread(workdir / "results/plots/theory_scatter.png")
    assert scatter.shape[0] > 1000 and scatter.shape[1] > 1500


def test_correlation_study(runs):
    workdir = runs[0]
    for i in range(3):  # ground truth: one job per subnet
        truth = json.loads((workdir / f"results/correlation/tiny/small/subnets/{i}/metrics.json").read_text())
        assert 0 < truth["test"]["logloss"] < 5 and truth["steps"] == 2
        assert (workdir / f"benchmarks/correlation/tiny/small/train_subnet/{i}.tsv").exists()
    data = pd.read_csv(workdir / "results/correlation/tiny/small/data.csv")
    assert sorted(data["level"].unique()) == [0.0, 0.5] and len(data) == 6
    assert not data.loc[data["level"] == 0.0, "sigeo"].equals(
        data.loc[data["level"] == 0.5, "sigeo"].reset_index(drop=True)
    )
    # the table's rank statistics are those of the real vectors, with each proxy's sign
    table = pd.read_csv(workdir / "results/tables/correlation_tiny_small.csv")
    assert list(table["proxy"]) == ["sigeo", "zico", "params", "random", "seeds"] * 2 and (table["n"] == 3).all()
    subnet_dir = workdir / "results/correlation/tiny/small/subnets"
    losses = [
        [json.loads((subnet_dir / f"{i}{run}/metrics.json").read_text())["test"]["logloss"] for i in range(3)]
        for run in ("", "/seed1")
    ]
    assert losses[0] != losses[1]  # seed 1 initialises differently
    top = data[data["level"] == 0.5]
    row = table.set_index(["level", "proxy"])
    assert row.loc[(0.5, "params"), "spearman"] == pytest.approx(-stats.spearmanr(top["params"], top["test_loss"])[0])
    assert row.loc[(0.5, "sigeo"), "kendall"] == pytest.approx(-stats.kendalltau(top["sigeo"], top["test_loss"])[0])
    summary = (workdir / "results/tables/correlation_tiny_small_summary.md").read_text()
    assert "SiGeo's ρ at 50 % exceeds its ρ at 0 %: **" in summary and "seed-pair Spearman" in summary
    assert "claim check" in (workdir / "logs/correlation/tiny/small/table.log").read_text()
    assert mpimg.imread(workdir / "results/plots/correlation_vs_warmup_tiny_small.png").shape[:2] == (630, 1125)


def test_search_results(runs):
    workdir = runs[0]
    results = pd.read_csv(workdir / "results/tables/search_results.csv")
    assert list(results["method"]) == [
        "SiGeo @ 50 %",
        "logistic regression (baseline)",
        "NASRecNet Small (published, baseline)",
    ]
    assert (results["cost_unit"] == "CPU-hours").all() and (results["cost"] > 0).all()
    summary = (workdir / "results/tables/search_summary.md").read_text()
    assert "Claim (d)" in summary and "**INCONCLUSIVE** (SiGeo @ 10 % or one-shot @ 100 % was not searched)" in summary
    bench = pd.read_csv(workdir / "benchmarks/warmup/tiny/small/w0.5.tsv", sep="\t")
    assert results.loc[0, "warmup_s"] == pytest.approx(bench["s"].iloc[0])
    assert (results["gap_to_bayes"].dropna() > 0).all()
    assert mpimg.imread(workdir / "results/plots/tiny_logloss_vs_cost.png").shape[:2] == (780, 840)  # no paper panel


def test_the_found_model_is_the_winner_retrained_on_train_and_val(runs):
    """select_best's winner (the only rank) trained again on the 512 training rows and all of val for the epoch
    its train-only run took; best.json, the search results and predict all name that model."""
    workdir = runs[0]
    final = workdir / "results/final/tiny/small/w0.5/sigeo"
    best = json.loads((final / "best.json").read_text())
    retrained = json.loads((final / "trainval/metrics.json").read_text())
    val_rows = json.loads((workdir / "results/data/tiny/meta.json").read_text())["rows"]["val"]
    assert retrained["train_rows"] == 512 + val_rows and retrained["trained_on"] == "train+val"
    assert retrained["replay"]["epochs"] == 1.0 and retrained["steps"] == (512 + val_rows) // 256
    assert best["found_model"] == "train+val"
    assert best["model"] == "results/final/tiny/small/w0.5/sigeo/trainval/model.pt"
    assert best["test"] == retrained["test"] == best["trainval"]["test"]
    assert best["train_only"]["model"] == "results/final/tiny/small/w0.5/sigeo/0/model.pt"
    assert best["train_only"]["test"] == json.loads((final / "0/metrics.json").read_text())["test"]
    assert Architecture.load(final / "trainval/arch.json").hash() == Architecture.load(workdir / EXPORTED).hash()
    row = pd.read_csv(workdir / "results/tables/search_results.csv").iloc[0]
    assert row["found_model"] == "train+val" and row["test_logloss"] == row["test_logloss_trainval"]
    assert row["test_logloss_trainval"] == pytest.approx(retrained["test"]["logloss"])
    assert row["test_logloss_train_only"] == pytest.approx(best["train_only"]["test"]["logloss"])
    assert "test_logloss_trainval" in (workdir / "results/tables/search_results.md").read_text()
    model = load_model(final / "best.json", workdir / "results/data/tiny/meta.json")
    saved = torch.load(final / "trainval/model.pt", weights_only=True)
    assert all(torch.equal(v, saved[k]) for k, v in model.net.state_dict().items())


def test_two_runs_from_scratch_give_identical_tables(runs):
    a, b = runs
    names = sorted(p.relative_to(a) for p in (a / "results/tables").iterdir())
    assert names == sorted(p.relative_to(b) for p in (b / "results/tables").iterdir())
    for name in names:
        if name.name.startswith(("search_results", "search_summary")):
            continue  # carry measured wall-clock costs; the table is compared below without them
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    frames = [pd.read_csv(d / "results/tables/search_results.csv") for d in runs]
    pd.testing.assert_frame_equal(frames[0].drop(columns=COST_COLUMNS), frames[1].drop(columns=COST_COLUMNS))
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


def test_a_lost_output_or_an_edited_intermediate_reruns_exactly_its_dependents(runs, tmp_path):
    """A deleted output (``best.json``, an input of the search-results table) plans its job and what depends on
    it; an intermediate whose content changes (a hand-edited exported architecture) plans everything
    downstream of it and nothing else. Snakemake >= 9.18 compares
    input checksums, so an intermediate that is deleted or only touched while its dependents are up to date
    reruns nothing."""
    workdir, saved = runs[1], tmp_path / "saved"
    best, exported = workdir / "results/final/tiny/small/w0.5/sigeo/best.json", workdir / EXPORTED
    saved.mkdir()
    for path in (best, exported):
        shutil.copy2(path, saved / path.name)
    best.unlink()
    assert planned(workdir) == {"select_best": 1, "search_results": 1, "search_plot": 1, "all": 1}
    shutil.copy2(saved / best.name, best)

    other = sample_architecture(np.random.default_rng(1), get_space("small"), num_blocks=2)
    assert other.hash() != Architecture.load(exported).hash()
    exported.write_text(json.dumps(other.to_dict(score=0.0), indent=2))
    assert planned(workdir) == {"train_final": 1, "retrain_best": 1, "select_best": 1, "search_results": 1,
                                "search_plot": 1, "all": 1}  # fmt: skip
    shutil.copy2(saved / exported.name, exported)
    assert planned(workdir) == {}


def test_choosing_the_gpu_rules_conda_environment_reruns_nothing(runs):
    """devices.conda_env_gpu is not among the jobs' params: without --sdm conda it changes nothing."""
    workdir = runs[0]
    config = config_for(workdir)
    config["devices"] = {**config.get("devices", {}), "conda_env_gpu": "envs/cuda.yaml"}
    write_config(workdir, config)
    try:
        assert planned(workdir) == {}
    finally:
        write_config(workdir, config_for(workdir))


def test_a_new_proxy_and_one_more_subnet_rerun_only_what_they_change(runs):
    """A new proxy rescores every level and one more subnet adds its trainings (two seeds); trained subnets stay."""
    workdir = runs[1]
    config = config_for(workdir)
    config["correlation"]["proxies"].append("flops")
    config["correlation"]["num_subnets"] = 4
    write_config(workdir, config)
    assert planned(workdir) == {
        "train_subnet": 1,
        "train_subnet_seed": 1,
        "score_subnets": 2,
        "correlation_table": 1,
        "all": 1,
    }


def test_seed_repeats_plan_one_training_per_extra_seed_and_keep_seed_zero(tmp_path):
    """Seed 0 of every subnet keeps its path; each extra seed of a repeated subnet is one more job, in seed{s}/."""
    write_tiny_mnist(tmp_path / "mnist", np.random.default_rng(0))
    config = config_for(tmp_path)
    config["correlation"] |= {"num_subnets": 4, "seed_repeats": 2, "repeat_subnets": 3}
    write_config(tmp_path, config)
    dry_run = run_snakemake(tmp_path, "-n").stdout
    jobs = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", dry_run, re.M)}
    assert (jobs["train_subnet"], jobs["train_subnet_seed"]) == (4, 6)
    outputs = set(re.findall(r"results/correlation/tiny/small/subnets/[\w/]+/metrics\.json", dry_run))
    expected = {f"results/correlation/tiny/small/subnets/{i}/metrics.json" for i in range(4)}
    expected |= {f"results/correlation/tiny/small/subnets/{i}/seed{s}/metrics.json" for i in range(3) for s in (1, 2)}
    assert outputs == expected
    config["correlation"]["seed_repeats"] = 0
    write_config(tmp_path, config)
    jobs = planned(tmp_path)
    assert "train_subnet_seed" not in jobs and jobs["train_subnet"] == 4
