"""Style gates run with the tests, so CI enforces them: ruff, ruff format, snakefmt."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


def tool(name: str) -> str:
    """The tool installed beside this interpreter (the project's virtual environment)."""
    return str(Path(sys.executable).parent / name)


@pytest.mark.parametrize(
    "args",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["snakefmt", "--check", "."]],
    ids=["ruff", "ruff-format", "snakefmt"],
)
def test_style(args):
    proc = subprocess.run([tool(args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
