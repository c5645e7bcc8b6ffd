"""Atomic file output: every result appears complete or not at all.

A job killed half-way must never leave a file that looks finished, so all writers go through a
temporary name in the destination folder and an ``os.replace`` (atomic on POSIX filesystems).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    Temporaries of ``path`` that a killed writer left behind are removed first (each output has one
    writer at a time: its Snakemake job).
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{glob.escape(dest.name)}.*.tmp{glob.escape(suffix)}"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{suffix}", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path, ".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def resume_path(out_dir: str | os.PathLike, checkpoint_dir: str | os.PathLike | None) -> Path:
    """Where a job writing into ``out_dir`` keeps its resume checkpoint: ``out_dir/resume.pt``, or with a
    ``checkpoint_dir`` (node-local scratch for checkpoints of GBs) that folder followed by ``out_dir``'s
    absolute path, so every job of every run has its own file there and finds it again when retried."""
    out_dir = Path(out_dir)
    if checkpoint_dir is None:
        return out_dir / "resume.pt"
    return Path(checkpoint_dir).joinpath(*out_dir.resolve().parts[1:], "resume.pt")
