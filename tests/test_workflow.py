"""The Snakemake workflow: lint, dry runs, start-up validation, and a real run of the data stage."""

from __future__ import annotations

import json

from conftest import ROOT, run_snakemake, tiny_config, write_config


def test_lint_is_clean():
    proc = run_snakemake(ROOT, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_dry_run_of_the_default_config(tmp_path, demo_config):
    write_config(tmp_path, demo_config)
    proc = run_snakemake(tmp_path, "-n", "--quiet", "rules")
    assert "prepare" in proc.stdout and "synthesize" in proc.stdout


def test_dry_run_of_the_paper_config(tmp_path, demo_config):
    """config/paper.yaml plans the paper's grid once its (here empty) input files exist, and only that:
    the default config beside it (the demo) is replaced, not merged under it."""
    write_config(tmp_path, demo_config)
    for name in ("criteo/train.txt", "avazu/train.csv", "kdd2012/training.txt", "kdd2012/userid_profile.txt"):
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / name).touch()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (tmp_path / "data" / "mnist").mkdir(exist_ok=True)
        (tmp_path / "data" / "mnist" / name).touch()
    proc = run_snakemake(tmp_path, "-n", "--quiet", "rules", "--configfile", str(ROOT / "config" / "paper.yaml"))
    out = proc.stdout
    for rule, count in (("warmup", 24), ("search", 36), ("train_final", 540), ("retrain_best", 36), ("prepare", 3)):
        assert any(line.split() == [rule, str(count)] for line in out.splitlines()), out
    assert "synthesize" not in out  # the demo's synthetic data set is not part of the paper's run


def test_bad_config_fails_at_start_naming_the_key(tmp_path, demo_config):
    config = tiny_config(demo_config)
    config["datasets"]["tiny"]["max_bad_rows"] = "lots"
    write_config(tmp_path, config)
    proc = run_snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "max_bad_rows" in out and "lots" in out


def test_data_stage_runs_and_is_then_up_to_date(tmp_path, demo_config):
    write_config(tmp_path, tiny_config(demo_config))
    run_snakemake(tmp_path, "--cores", "2", "results/data/tiny/meta.json")
    meta = json.loads((tmp_path / "results/data/tiny/meta.json").read_text())
    assert sum(meta["rows"].values()) == 3000
    assert (tmp_path / "benchmarks/prepare/tiny.tsv").exists()
    assert "prepared" in (tmp_path / "logs/prepare/tiny.log").read_text()
    again = run_snakemake(tmp_path, "--cores", "2", "results/data/tiny/meta.json")
    assert "Nothing to be done" in again.stdout + again.stderr
