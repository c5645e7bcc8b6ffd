"""envs/*.yaml (for --sdm conda) install what pyproject.toml declares, and the right torch build."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def by_name(requirements: list[str]) -> dict[str, Requirement]:
    parsed = [Requirement(line) for line in requirements]
    return {canonicalize_name(req.name): req for req in parsed}


def conda_env(flavour: str) -> tuple[str, list[str]]:
    """(the conda python spec, the pip lines) of envs/{flavour}.yaml."""
    deps = yaml.safe_load((ROOT / "envs" / f"{flavour}.yaml").read_text())["dependencies"]
    python = next(dep for dep in deps if isinstance(dep, str) and dep.startswith("python "))
    pip = next(dep["pip"] for dep in deps if isinstance(dep, dict))
    return python, pip


@pytest.mark.parametrize("flavour", ["cpu", "cuda"])
def test_env_installs_the_project_dependencies(flavour):
    python, pip = conda_env(flavour)
    packages = [line for line in pip if not line.startswith("-")]
    assert by_name(packages) == by_name(PROJECT["dependencies"])
    assert len(packages) == len(PROJECT["dependencies"])
    assert "-e ../" in pip  # sigeo itself, from the repository
    assert SpecifierSet(PROJECT["requires-python"]).contains(python.split("=")[-1])


@pytest.mark.parametrize(("flavour", "index"), [("cpu", "/whl/cpu"), ("cuda", "/whl/cu")])
def test_env_takes_torch_from_its_build_index(flavour, index):
    options = [line for line in conda_env(flavour)[1] if line.startswith("--extra-index-url")]
    assert len(options) == 1 and index in options[0]


def test_gpu_rules_take_the_configured_environment_and_the_others_the_cpu_one(tmp_path):
    """devices.conda_env_gpu picks the GPU rules' environment (by default the CPU one); a missing file is a
    config error naming the key."""
    from test_profiles import gpu_rules

    from sigeo.config import gpu_conda_env, load_config
    from sigeo.errors import ConfigError

    envs = {}
    for smk in (ROOT / "rules").glob("*.smk"):
        for block in re.split(r"^(?=rule \w+:|use rule )", smk.read_text(), flags=re.MULTILINE):
            if (name := re.match(r"rule (\w+):", block)) and (env := re.search(r"conda:\s+(\S+)", block)):
                envs[name[1]] = env[1]
    gpu = gpu_rules() & set(envs)
    assert len(gpu) >= 6 and len(envs) - len(gpu) >= 10
    assert {rule: env for rule, env in envs.items() if rule in gpu} == dict.fromkeys(gpu, "GPU_ENV")
    assert {rule: env for rule, env in envs.items() if rule not in gpu} == dict.fromkeys(
        set(envs) - gpu, '"../envs/cpu.yaml"'
    )
    config = load_config({"datasets": {"d": {"format": "criteo", "source": "synthetic", "synthetic": {"rows": 10}}}})
    assert gpu_conda_env(config) == ROOT / "envs" / "cpu.yaml"
    config["devices"]["conda_env_gpu"] = "envs/cuda.yaml"
    assert gpu_conda_env(config) == ROOT / "envs" / "cuda.yaml"
    config["devices"]["conda_env_gpu"] = "envs/rocm.yaml"
    with pytest.raises(ConfigError, match=r"config key devices.conda_env_gpu: envs/rocm.yaml is not a file"):
        gpu_conda_env(config)
