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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The conventional names of the files in a stage's folder, spelled only here. A workflow job writes
# where its rule's ``output:`` says (the scripts pass those paths in); these names are the defaults of
# callers without a Snakefile (:meth:`TrainingOutputs.in_folder`) and what readers that must find a
# file by convention look for (``sigeo predict`` beside a model, :class:`sigeo.data.store.Dataset`).
#: a prepared data set's metadata, beside its split folders
META_FILE = "meta.json"
#: a trained network's weights (a ``state_dict``)
MODEL_FILE = "model.pt"
#: a warmed-up supernet's weights (a ``state_dict``)
SUPERNET_FILE = "supernet.pt"
#: a training's figures, written last: the sign of a finished job
METRICS_FILE = "metrics.json"
#: a training's per-step log
TRAIN_LOG_FILE = "train_log.csv"
#: a trained architecture (reference format), beside its weights
ARCH_FILE = "arch.json"
#: a running job's resume checkpoint (see :func:`resume_path`)
RESUME_FILE = "resume.pt"


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
        return out_dir / RESUME_FILE
    return Path(checkpoint_dir).joinpath(*out_dir.resolve().parts[1:], RESUME_FILE)


@dataclass(frozen=True)
class TrainingOutputs:
    """The files a training writes (a warm-up, a final training or retraining, a baseline, a subnet of
    the correlation study): its ``weights``, its ``train_log`` and its ``metrics``, written last. The
    workflow passes its rule's outputs; :meth:`in_folder` gives the conventional names in one folder."""

    weights: Path
    train_log: Path
    metrics: Path

    def __post_init__(self) -> None:
        for name in ("weights", "train_log", "metrics"):
            object.__setattr__(self, name, Path(getattr(self, name)))

    @classmethod
    def in_folder(cls, folder: str | os.PathLike, weights: str = MODEL_FILE) -> TrainingOutputs:
        """The conventional names in ``folder`` (``weights``: the weights' file name)."""
        folder = Path(folder)
        return cls(folder / weights, folder / TRAIN_LOG_FILE, folder / METRICS_FILE)

    @property
    def folder(self) -> Path:
        """The folder of ``metrics``: where the job's resume checkpoint is kept (:func:`resume_path`)."""
        return self.metrics.parent
