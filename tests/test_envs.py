"""envs/*.yaml (for --sdm conda) install what pyproject.toml declares, and the right torch build."""

from __future__ import annotations

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
