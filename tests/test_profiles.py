"""The Snakemake profiles parse and apply (dry runs), and the SLURM profile's GPU requests reach sbatch
as the README says; tests/test_slurm.py runs profiles/slurm for real."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_snakemake, tiny_config, write_config

# The README's two ways to ask for a GPU model (profiles/slurm/config.yaml, set-resources of a GPU rule).
GPU_MODEL = {"gpu_model": "a100"}
GRES = {"gpu": 0, "gres": "gpu:a100:1"}  # --gres instead of --gpus: the rules' own gpu=1 switched off


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


# One file per call: the plugin submits jobs concurrently, and lines appended to one shared file interleave.
FAKE_SBATCH = """#!/bin/sh
printf '%s\\n' "$@" > "$(mktemp "$SBATCH_CALLS/call.XXXXXX")"
echo 'sbatch: error: a stand-in that submits nothing' >&2
exit 1
"""


def sbatch_calls(workdir: Path, set_resources: dict[str, dict], targets: list[str]) -> dict[str, list[str]]:
    """The sbatch arguments the installed SLURM plugin renders for each target's job under profiles/slurm with
    ``set_resources`` merged into its rules; a stand-in ``sbatch`` (and silent SLURM tools) on the PATH
    records them and refuses every job, so nothing runs."""
    bin_dir, profile = workdir / "bin", workdir / "profile"
    bin_dir.mkdir()
    profile.mkdir()
    for tool in ("sinfo", "squeue", "sacct", "sacctmgr", "sshare", "scontrol", "scancel", "srun"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    config = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    for rule, resources in set_resources.items():
        config["set-resources"][rule] = {**config["set-resources"][rule], **resources}
    (profile / "config.yaml").write_text(yaml.safe_dump(config))
    calls = workdir / "sbatch_calls"
    calls.mkdir()
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SBATCH_CALLS": str(calls)}
    options = ("--retries", "0", "--slurm-init-seconds-before-status-checks", "1")
    run_snakemake(workdir, "--profile", str(profile), *options, *targets, check=False, env=env, timeout=300)
    by_rule = {}
    for call in sorted(calls.iterdir()):
        args = call.read_text().splitlines()
        if "--comment" not in args:  # the plugin's own probes of sbatch (no job), not a submission
            continue
        by_rule[re.match(r"rule_(\w+?)_wildcards", args[args.index("--comment") + 1])[1]] = args
    return by_rule


def test_slurm_gpu_model_and_gres_advice_renders_one_gpu_request(tmp_path, demo_config):
    """``gpu_model`` becomes ``--gpus=a100:1``; ``gres`` with ``gpu: 0`` becomes ``--gres=gpu:a100:1`` alone;
    ``gres`` left beside the rules' ``gpu=1`` would ask twice (``--gres`` and ``--gpus``)."""
    write_config(tmp_path, tiny_config(demo_config))
    meta = tmp_path / "results" / "data" / "tiny" / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text("{}")  # a prepared data set, as far as the plan goes: only GPU jobs are left to submit
    targets = ["results/supernet/tiny/small/w0.0/metrics.json", "results/baselines/tiny/logreg/metrics.json",
               "results/correlation/tiny/small/subnets/0/metrics.json"]  # fmt: skip
    resources = {"warmup": GPU_MODEL, "train_baseline": GRES, "train_subnet": {"gres": "gpu:a100:1"}}
    calls = sbatch_calls(tmp_path, resources, targets)
    gpu_flags = {rule: [a for a in args if a.startswith(("--gpus", "--gres"))] for rule, args in calls.items()}
    assert gpu_flags == {
        "warmup": ["--gpus=a100:1"],
        "train_baseline": ["--gres=gpu:a100:1"],
        "train_subnet": ["--gres=gpu:a100:1", "--gpus=1"],
    }
    advice = (ROOT / "profiles" / "slurm" / "config.yaml").read_text() + (ROOT / "README.md").read_text()
    assert "gpu_model: a100" in advice and 'gpu: 0, gres: "gpu:a100:1"' in advice
