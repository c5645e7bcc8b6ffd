"""The Snakemake workflow: lint, dry runs, start-up validation, and a real run of the data stage."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from conftest import ROOT, run_snakemake, tiny_config, write_config

from sigeo.config import SearchJob, WarmupJob, job_settings, load_settings


def test_lint_is_clean():
    proc = run_snakemake(ROOT, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_dry_run_of_the_default_config(tmp_path, demo_config):
    write_config(tmp_path, demo_config)
    proc = run_snakemake(tmp_path, "-n", "--quiet", "rules")
    assert "prepare" in proc.stdout and "synthesize" in proc.stdout


def paper_inputs(workdir: Path) -> None:
    """Empty stand-ins for the raw files config/paper.yaml reads (a dry run only needs them to exist)."""
    for name in ("criteo/train.txt", "avazu/train.csv", "kdd2012/training.txt", "kdd2012/userid_profile.txt"):
        (workdir / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / "data" / name).touch()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (workdir / "data" / "mnist").mkdir(exist_ok=True)
        (workdir / "data" / "mnist" / name).touch()


def test_dry_run_of_the_paper_config(tmp_path, demo_config):
    """config/paper.yaml plans the paper's grid once its (here empty) input files exist, and only that:
    the default config beside it (the demo) is replaced, not merged under it."""
    write_config(tmp_path, demo_config)
    paper_inputs(tmp_path)
    proc = run_snakemake(tmp_path, "-n", "--quiet", "rules", "--configfile", str(ROOT / "config" / "paper.yaml"))
    out = proc.stdout
    for rule, count in (("warmup", 24), ("search", 36), ("train_final", 540), ("retrain_best", 36), ("prepare", 3)):
        assert any(line.split() == [rule, str(count)] for line in out.splitlines()), out
    assert "synthesize" not in out  # the demo's synthetic data set is not part of the paper's run


def recorded(workdir: Path) -> dict[str, list[str]]:
    """Each output file Snakemake keeps a record of, with the params of the job that made it (its
    metadata: file names are the paths in URL-safe base64, ``params`` the reprs of the job's params)."""
    return {
        base64.urlsafe_b64decode(record.name).decode(): json.loads(record.read_text())["params"]
        for record in (workdir / ".snakemake" / "metadata").iterdir()
    }


def test_paper_overrides_reach_only_their_data_sets_jobs(tmp_path, demo_config):
    """Each data set's warm-up and one-shot search get its own settings (as Snakemake records the params
    each job was given), and changing KDD's override reruns KDD's jobs and nothing else."""
    write_config(tmp_path, demo_config)
    paper_inputs(tmp_path)
    paper = ROOT / "config" / "paper.yaml"
    warmups = {d: f"results/supernet/{d}/small/w1.0/metrics.json" for d in ("criteo", "avazu", "kdd")}
    searches = {d: f"results/search/{d}/small/w1.0/oneshot/records.csv" for d in ("criteo", "avazu", "kdd")}
    targets = [*warmups.values(), *searches.values()]
    run_snakemake(tmp_path, "--touch", "--cores", "1", *targets, "--configfile", str(paper))
    params, settings = recorded(tmp_path), load_settings(paper)
    for d, batch, mixing, probe_batch, eval_batches in (("criteo", 512, 15000, 512, 150),
                                                        ("avazu", 512, 12500, 512, 125),
                                                        ("kdd", 1024, 20000, 1024, 175)):  # fmt: skip
        warmup, search = (job_settings(job, settings.dataset(d)) for job in (WarmupJob, SearchJob))
        assert repr(warmup) in params[warmups[d]] and repr(search) in params[searches[d]], d  # what each job got
        assert (warmup.warmup.batch_size, warmup.warmup.full_path_steps) == (batch, mixing), d
        assert search.warmup == warmup.warmup, d
        assert (search.probe_data.probe_batch_size, search.probe_data.eval_batches) == (probe_batch, eval_batches)

    # the recorded outputs made, data before supernets before searches, so that all is up to date
    for path in sorted(params, key=lambda p: ("/data/" not in p, "/search/" in p)):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    changed = tmp_path / "paper_changed.yaml"
    changed.write_text(paper.read_text().replace("warmup: {batch_size: 1024,", "warmup: {batch_size: 2048,"))
    proc = run_snakemake(tmp_path, "-n", *targets, "--configfile", str(changed))
    planned = [
        line.split(":", 1)[1].strip() for line in proc.stdout.splitlines() if line.strip().startswith("wildcards:")
    ]
    assert sorted(planned) == ["dataset=kdd, space=small, level=1.0",
                               "dataset=kdd, space=small, level=1.0, proxy=oneshot, repeat="], proc.stdout  # fmt: skip
    assert "Params have changed since last execution" in proc.stdout


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
