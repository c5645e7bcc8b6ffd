"""The Snakemake profiles parse and apply (dry runs); tests/test_slurm.py runs profiles/slurm for real."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import ROOT, run_snakemake, write_config


def gpu_rules() -> set[str]:
    """Every rule of the workflow whose resources ask for a GPU (``gpu=1``), read from rules/*.smk; a
    ``use rule A as B`` inherits A's resources unless it sets its own."""
    own, bases = {}, {}
    for smk in (ROOT / "rules").glob("*.smk"):
        for block in re.split(r"^(?=rule \w+:|use rule )", smk.read_text(), flags=re.MULTILINE):
            gpu = bool(re.search(r"^\s+gpu=1,", block, re.MULTILINE))
            if name := re.match(r"rule (\w+):", block):
                own[name[1]] = gpu
            elif use := re.match(r"use rule (\w+) as (\w+)", block):
                if "resources:" in block:
                    own[use[2]] = gpu
                else:
                    bases[use[2]] = use[1]
    return {rule for rule, gpu in own.items() if gpu} | {new for new, base in bases.items() if own.get(base)}


@pytest.mark.parametrize(("profile", "applied"), [("local", "mem_mb=2000"), ("slurm", "slurm_partition=cpu")])
def test_profile_applies_to_the_workflow(tmp_path, demo_config, profile, applied):
    write_config(tmp_path, demo_config)
    proc = run_snakemake(tmp_path, "--profile", str(ROOT / "profiles" / profile), "-n")
    out = proc.stdout + proc.stderr
    assert f"Using profile {ROOT / 'profiles' / profile} " in out
    assert applied in out  # the profile's default-resources reached the jobs


def test_slurm_profile_asks_one_gpu_for_each_gpu_rule():
    per_rule = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())["set-resources"]
    rules = gpu_rules()
    assert {"warmup", "search", "train_final", "retrain_best", "train_baseline"} <= rules
    assert {"train_subnet", "train_subnet_seed"} <= rules
    assert {rule: per_rule.get(rule, {}).get("gpu") for rule in rules} == dict.fromkeys(rules, 1)
    assert not any("slurm_extra" in resources for resources in per_rule.values())  # the plugin rejects GPU flags there
