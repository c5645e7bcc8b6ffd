"""The selected model as a self-contained ``torch.export`` program (``model.pt2``).

The program is the network's traced graph with its weights, so PyTorch alone runs it: neither the
``sigeo`` package nor this repository needs to be installed where it is used::

    import torch

    predict = torch.export.load("model.pt2").module()
    probability = predict(dense, sparse)  # float32 [N]

Inputs, for any batch size N >= 1:

- ``dense``: float32 [N, D], the data set's D dense features already transformed as ``prepare``
  transforms them, ``log(max(x, 0) + 1)`` with 0 for a missing value (Avazu: one column of zeros);
- ``sparse``: int64 [N, C], the C categorical features already hashed as ``prepare`` hashes them,
  ``v mod (N_f - 1) + 1`` with 0 for a missing value, so feature f's ids lie in ``0 .. N_f - 1``.

The output is the click probability, float32 [N]. The feature names, table sizes N_f and raw format
travel inside the file as ``sigeo.json`` (read them with ``torch.export.load(path, extra_files=...)``),
which lets ``sigeo predict model.pt2 RAW`` check the program against a data set's ``meta.json``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import torch
from torch import nn
from torch.export import Dim

from .errors import DataError
from .io import atomic_path

PROGRAM_INFO = "sigeo.json"
#: What a model's inputs depend on in a prepared data set's ``meta.json``.
DATA_KEYS = ("format", "dense_features", "sparse_features", "table_sizes")


class ClickProbability(nn.Module):
    """A CTR network's logits as click probabilities: what ``sigeo predict`` writes and the program returns."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(dense, sparse))


def data_info(meta: dict) -> dict:
    """The :data:`DATA_KEYS` of a prepared data set's ``meta.json``."""
    return {key: meta[key] for key in DATA_KEYS}


def export_program(model: ClickProbability, meta: dict) -> torch.export.ExportedProgram:
    """Trace ``model`` for inputs shaped like ``meta``'s rows, with the batch dimension left free."""
    example = (
        torch.zeros(2, len(meta["dense_features"]), dtype=torch.float32),
        torch.zeros(2, len(meta["sparse_features"]), dtype=torch.int64),
    )
    batch = Dim("batch", min=1)
    return torch.export.export(model.eval(), example, dynamic_shapes=({0: batch}, {0: batch}))


def save_program(program: torch.export.ExportedProgram, meta: dict, path: str | os.PathLike) -> None:
    """Write ``program`` to ``path`` (atomically) with ``meta``'s :func:`data_info` inside."""
    with atomic_path(path, ".pt2") as tmp:
        torch.export.save(program, tmp, extra_files={PROGRAM_INFO: json.dumps(data_info(meta))})


def load_program(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """The program in ``path`` as a callable module, and the :func:`data_info` it was exported for."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    extra = {PROGRAM_INFO: ""}
    try:
        program = torch.export.load(path, extra_files=extra)
    except (RuntimeError, ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a torch.export program: {first}") from exc
    if not extra[PROGRAM_INFO]:
        raise DataError(f"{path}: has no {PROGRAM_INFO} (not exported by sigeo), so its inputs are unknown")
    return program.module(), json.loads(extra[PROGRAM_INFO])
