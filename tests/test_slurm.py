"""The SLURM profile for real: a throw-away single-node cluster on localhost runs the workflow.

The fixture installs Debian's Slurm and munge (root and apt needed), starts them with fake GPUs
(``tests/slurm/up.sh``) and stops them afterwards, also when the test fails (``tests/slurm/down.sh``).
The search chain of the tiny test config (data, warm-up, search, export, final training, the
baselines, selection, the search-results table: every GPU rule of that chain) then runs through
``--profile profiles/slurm`` with only what this one small node needs changed on the command line,
so the shipped profile is what gets tested. Each submitted job costs about half a minute here (two
Snakemake start-ups, and the executor's status polls, whose interval grows by 10 s while nothing
finishes), so the target is one chain, not the whole default DAG (tests/test_dag.py runs that).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_snakemake, tiny_config, write_config

pytestmark = pytest.mark.slurm

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
TOOLS = ("slurmctld", "slurmd", "sbatch", "squeue", "munged")
SCRIPTS = ROOT / "tests" / "slurm"
SLURM_DIR = Path("/tmp/sigeo-slurm")  # up.sh's default
PROFILE = ROOT / "profiles" / "slurm"
# What the throw-away node offers: one partition and less memory than real GPU nodes.
NODE_RESOURCES = {"slurm_partition": "debug", "mem_mb": 1000}
TARGET = "results/tables/search_results.csv"


def unavailable(reason: str) -> None:
    """Skip where Slurm cannot be had; under CI (``CI`` set) that is a failure, so it cannot go unnoticed."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def install_slurm() -> None:
    if os.geteuid() != 0:
        unavailable("the throw-away Slurm cluster needs root")
    if all(shutil.which(tool) for tool in TOOLS):
        return
    if not shutil.which("apt-get"):
        unavailable(f"no apt-get to install {' '.join(PACKAGES)} with")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
    ):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            unavailable(f"`{' '.join(cmd)}` failed: {(proc.stdout + proc.stderr)[-2000:]}")


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[None]:
    install_slurm()
    try:
        up = subprocess.run(["bash", SCRIPTS / "up.sh"], capture_output=True, text=True, timeout=120)
        if up.returncode != 0:
            unavailable(f"tests/slurm/up.sh failed:\n{up.stdout}{up.stderr}")
        yield
    finally:
        for log in sorted(SLURM_DIR.glob("log/*.log")):
            print(f"--- {log} (last lines)\n{''.join(log.read_text().splitlines(True)[-20:])}")
        subprocess.run(["bash", SCRIPTS / "down.sh"], timeout=120)


def fit_profile_to_node(rules: set[str]) -> list[str]:
    """Options that fit profiles/slurm to the throw-away node: its partition, its memory, its cores,
    no accounting database (poll with squeue) and a quick first poll; every other setting is the profile's.

    ``--default-resources`` and ``--set-resources`` replace the profile's mappings whole, so they are
    rebuilt from the profile with only the node's values swapped in.
    """
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    defaults = {**profile["default-resources"], **NODE_RESOURCES}
    per_rule = profile.get("set-resources", {})
    per_rule = {rule: {**per_rule.get(rule, {}), **NODE_RESOURCES} for rule in rules | set(per_rule)}
    return [
        "--default-resources",
        *(f"{key}={value}" for key, value in defaults.items()),
        "--set-resources",
        *(f"{rule}:{key}={value}" for rule, resources in per_rule.items() for key, value in resources.items()),
        "--max-threads",
        str(os.cpu_count()),
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "1",
    ]


def test_search_chain_runs_through_the_slurm_profile(slurm_cluster, tmp_path, demo_config):
    config = tiny_config(demo_config)
    write_config(tmp_path, config)
    plan = run_snakemake(tmp_path, TARGET, "-n", "--quiet", "rules").stdout
    rules = set(re.findall(r"^(\w+)\s+\d+$", plan, re.MULTILINE)) - {"total"}
    assert {"synthesize", "prepare", "warmup", "search", "train_final", "select_best"} <= rules

    proc = run_snakemake(tmp_path, "--profile", str(PROFILE), *fit_profile_to_node(rules), TARGET, timeout=600)
    out = proc.stdout + proc.stderr
    submitted = set(re.findall(r"^rule (\w+):$", out, re.MULTILINE))  # local jobs print "localrule x:"
    assert submitted == {"synthesize", "prepare", "warmup", "search", "train_final", "train_baseline"}  # rest: local
    for rule in submitted:  # each went through sbatch -> slurmd -> srun and finished there
        logs = list((tmp_path / "logs" / "slurm" / f"rule_{rule}").rglob("*.log"))
        assert logs, f"no Slurm log for rule {rule}:\n{out}"
        assert all("1 of 1 steps (100%) done" in log.read_text() for log in logs), logs
    assert len(re.findall(r"submitted with SLURM jobid \d+", out)) == len(re.findall(r"^rule \w+:$", out, re.MULTILINE))

    meta = json.loads((tmp_path / "results/data/tiny/meta.json").read_text())
    assert sum(meta["rows"].values()) == config["datasets"]["tiny"]["synthetic"]["rows"]
    best = json.loads((tmp_path / "results/final/tiny/small/w0.5/sigeo/best.json").read_text())
    assert 0 < best["test"]["logloss"] < 5
    again = run_snakemake(tmp_path, "-n", TARGET)
    assert "Nothing to be done" in again.stdout + again.stderr
