"""Safety audit of the source tree, as tests so that a regression fails CI.

* every ``torch.load`` passes ``weights_only=True`` (loading a checkpoint cannot run code);
* nothing imports a pickle-based module or calls a pickle loader, no ``allow_pickle=True``, and
  YAML is only read safely;
* no rule has a ``shell:`` directive and no Python code starts a shell (``shell=True``,
  ``os.system``, ``os.popen``), so no config string ever reaches a shell.

Python files are checked on their syntax tree with import aliases resolved (``import torch as
th; th.load(...)`` counts; strings and comments cannot trip a check), Snakemake files as text.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

SKIPPED_DIRS = {".git", ".venv", ".snakemake", ".hypothesis", ".pytest_cache", ".ruff_cache", "__pycache__",
                "results", "logs", "benchmarks", "build"}  # fmt: skip
PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal", "jsonpickle"}
PICKLE_CALLS = {"pandas.read_pickle", "yaml.unsafe_load", "yaml.full_load", "numpy.lib.format.read_array"}
SHELL_CALLS = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"}


def source_files(*suffixes: str) -> list[Path]:
    """The repository's own files ending in one of ``suffixes``, virtual environments and outputs left out."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        found += [Path(folder) / f for f in files if f.endswith(suffixes)]
    return sorted(found)


PYTHON = source_files(".py")
SNAKEMAKE = source_files(".smk", "Snakefile")


@functools.cache
def parsed(path: Path) -> tuple[ast.Module, dict[str, str]]:
    """The syntax tree of ``path`` and its import aliases (``np`` -> ``numpy``, ``load`` -> ``torch.load``)."""
    tree = ast.parse(path.read_text(), str(path))
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname or a.name.split(".")[0]: a.name if a.asname else a.name.split(".")[0]
                            for a in node.names})  # fmt: skip
        elif isinstance(node, ast.ImportFrom) and node.module:
            aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    return tree, aliases


def calls(path: Path) -> Iterator[tuple[ast.Call, str]]:
    """Every call in ``path`` with its callee's full dotted name (``np.load`` -> ``numpy.load``)."""
    tree, aliases = parsed(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            head, _, rest = ast.unparse(node.func).partition(".")
            full = aliases.get(head, head)
            yield node, f"{full}.{rest}" if rest else full


def keyword(call: ast.Call, name: str) -> object:
    """The value of keyword argument ``name``: its constant, its source text, or ``...`` when absent."""
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else ast.unparse(kw.value)
    return ...


def where(path: Path, node: ast.AST) -> str:
    return f"{path.name}:{node.lineno}"


def unsafe_torch_loads(paths: list[Path]) -> tuple[list[str], list[str]]:
    """(every torch.load, those without ``weights_only=True``)."""
    loads = [
        (where(p, c), keyword(c, "weights_only")) for p in paths for c, callee in calls(p) if callee == "torch.load"
    ]
    return [at for at, _ in loads], [at for at, weights_only in loads if weights_only is not True]


def pickle_uses(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        tree, _ = parsed(path)
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            found += [f"{where(path, node)} import {n}" for n in names if n.split(".")[0] in PICKLE_MODULES]
        for call, callee in calls(path):
            unsafe_yaml = callee == "yaml.load" and "SafeLoader" not in str(keyword(call, "Loader"))
            if callee in PICKLE_CALLS or keyword(call, "allow_pickle") not in (..., False) or unsafe_yaml:
                found.append(f"{where(path, call)} {callee}")
    return found


def shell_uses(python: list[Path], snakemake: list[Path]) -> list[str]:
    found = [
        f"{path.name}:{number}"
        for path in snakemake
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.match(r"\s*shell\s*:", line) or re.search(r"\bshell\s*\(", line)
    ]
    found += [
        f"{where(path, call)} {callee}"
        for path in python
        for call, callee in calls(path)
        if callee in SHELL_CALLS or keyword(call, "shell") not in (..., False)
    ]
    return found


def test_the_scan_sees_the_source_tree():
    names = {p.relative_to(ROOT).as_posix() for p in PYTHON + SNAKEMAKE}
    assert {
        "sigeo/train.py",
        "sigeo/search/evolution.py",
        "workflow/scripts/warmup.py",
        "Snakefile",
        "rules/common.smk",
    } <= names
    assert not any(part in SKIPPED_DIRS for p in PYTHON for part in p.relative_to(ROOT).parts)


def test_every_torch_load_is_weights_only():
    loads, unsafe = unsafe_torch_loads(PYTHON)
    assert {"train.py", "warmup.py"} <= {at.split(":")[0] for at in loads}, loads
    assert not unsafe, f"torch.load without weights_only=True: {unsafe}"


def test_no_pickle():
    assert not pickle_uses(PYTHON)


def test_no_shell_in_rules_or_code():
    assert not shell_uses(PYTHON, SNAKEMAKE)


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load('x.pt')\n",
        "from torch import load\nload('x.pt', weights_only=False)\n",
        "import torch as th\nth.load('x.pt', weights_only=flag)\n",
        "import pickle\n",
        "from joblib import load\n",
        "import numpy as np\nnp.load('x.npy', allow_pickle=True)\n",
        "import pandas as pd\npd.read_pickle('x')\n",
        "import yaml\nyaml.load(text, Loader=yaml.Loader)\n",
        "import subprocess\nsubprocess.run(cmd, shell=True)\n",
        "import os\nos.system('ls')\n",
        "rule x:\n    shell:\n        'ls {input}'\n",
    ],
)
def test_the_checks_catch_a_planted_violation(tmp_path, source):
    """Each check fails on a file that breaks its rule, so a clean tree means something."""
    if source.startswith("rule"):
        (tmp_path / "x.smk").write_text(source)
        assert shell_uses([], [tmp_path / "x.smk"])
        return
    (tmp_path / "x.py").write_text(source)
    files = [tmp_path / "x.py"]
    assert unsafe_torch_loads(files)[1] or pickle_uses(files) or shell_uses(files, [])
