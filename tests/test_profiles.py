"""The Snakemake profiles parse and apply (dry runs); tests/test_slurm.py runs profiles/slurm for real."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT, run_snakemake, write_config

GPU_RULES = ("warmup", "search", "train_final", "train_baseline", "train_subnet", "score_subnets")


@pytest.mark.parametrize(("profile", "applied"), [("local", "mem_mb=2000"), ("slurm", "slurm_partition=cpu")])
def test_profile_applies_to_the_workflow(tmp_path, demo_config, profile, applied):
    write_config(tmp_path, demo_config)
    proc = run_snakemake(tmp_path, "--profile", str(ROOT / "profiles" / profile), "-n")
    out = proc.stdout + proc.stderr
    assert f"Using profile {ROOT / 'profiles' / profile} " in out
    assert applied in out  # the profile's default-resources reached the jobs


def test_slurm_profile_asks_one_gpu_for_each_gpu_rule():
    per_rule = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())["set-resources"]
    assert {rule: per_rule[rule]["gpu"] for rule in GPU_RULES} == dict.fromkeys(GPU_RULES, 1)
    assert not any("slurm_extra" in resources for resources in per_rule.values())  # the plugin rejects GPU flags there
