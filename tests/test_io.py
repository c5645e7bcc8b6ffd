"""Atomic outputs: a write that fails or is killed half-way never replaces the file that was there,
and a half-written checkpoint is never the one that gets loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from sigeo.io import atomic_path, write_json
from sigeo.train import Checkpointer


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"step": 1})
    with pytest.raises(RuntimeError), atomic_path(path, ".json") as tmp:
        tmp.write_text('{"step": ')
        raise RuntimeError("disk full")
    assert path.read_text() == '{\n  "step": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_missing_output_is_not_created_by_a_failed_write(tmp_path):
    with pytest.raises(ValueError), atomic_path(tmp_path / "out.csv") as tmp:
        tmp.write_text("a,b\n1,")
        raise ValueError
    assert list(tmp_path.iterdir()) == []


KILLED_MID_SAVE = """
import os, signal, sys, torch
from pathlib import Path
from sigeo.train import Checkpointer

checkpointer = Checkpointer(Path(sys.argv[1]), every_s=0.0)
checkpointer.save({"step": torch.tensor(1), "weights": torch.ones(1000)})

def half_then_killed(state, f):
    Path(f).write_bytes(b"PK\\x03\\x04 half a checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = half_then_killed
checkpointer.save({"step": torch.tensor(2), "weights": torch.zeros(1000)})
"""


def test_a_checkpoint_killed_mid_write_is_never_loaded(tmp_path):
    path = tmp_path / "resume.pt"
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE, str(path)], capture_output=True)
    assert proc.returncode == -9
    assert len(list(tmp_path.glob(".resume.pt.*.tmp.pt"))) == 1  # the half-written file, under its temporary name
    checkpointer = Checkpointer(path, every_s=0.0)
    state = checkpointer.load()
    assert int(state["step"]) == 1 and torch.equal(state["weights"], torch.ones(1000))
    checkpointer.save({"step": torch.tensor(2)})  # the next write of the same file clears the leftover
    assert [p.name for p in tmp_path.iterdir()] == ["resume.pt"] and int(checkpointer.load()["step"]) == 2
