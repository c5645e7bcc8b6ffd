"""Baselines the searched architectures must beat, trained on the same split with the same recipe.

Two kinds (``search.baselines``): a logistic regression over the same hashed features — the simplest
model a CTR practitioner would try, and a floor any searched network should clear — and the NASRecNet
architecture the paper's authors published for the data set's format and the search space, which is
what a search in that space is meant to rediscover or improve on. Both go through
:func:`sigeo.final.train_model`, so a difference to a searched model is the architecture's, not the
training's.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

import torch
from torch import nn

from .data.store import Dataset
from .final import FinalSettings, train_final, train_model
from .io import TrainingOutputs
from .space.choice import Architecture

LOGREG = "logreg"
NASREC_PREFIX = "nasrec_"


class LogisticRegression(nn.Module):
    """``logit = w·dense + b + Σ_f v_f[id_f]``: one weight per hashed id of every field, a linear
    dense part and a bias.

    The per-field weights live in one ``nn.Embedding(Σ N_f, 1)`` with per-field row offsets and
    sparse gradients, as the networks' embedding tables do, so an optimizer step touches only the
    rows of the batch. Every weight starts at zero (the model is convex; no symmetry to break).
    """

    def __init__(self, num_dense: int, table_sizes: Sequence[int]) -> None:
        super().__init__()
        self.dense = nn.Linear(num_dense, 1)
        self.register_buffer("offsets", torch.tensor([0, *itertools.accumulate(table_sizes[:-1])]), persistent=False)
        self.sparse = nn.Embedding(sum(table_sizes), 1, sparse=True)
        for p in self.parameters():
            nn.init.zeros_(p)

    def forward(self, dense: torch.Tensor, sparse_ids: torch.Tensor) -> torch.Tensor:
        return self.dense(dense).squeeze(1) + self.sparse(sparse_ids + self.offsets).sum(dim=(1, 2))


def train_baseline(
    name: str,
    dataset_dir: str | os.PathLike,
    settings: FinalSettings,
    outputs: TrainingOutputs,
    device: torch.device,
    arch: Architecture | None = None,
) -> dict:
    """Train baseline ``name`` (``logreg``, or ``nasrec_{space}`` with its published ``arch``) from
    scratch; writes what every final training writes to ``outputs`` (the logistic regression's
    ``metrics.json`` says ``"baseline": "logreg"``, a NASRecNet's carries its ``arch_hash``)."""
    if name == LOGREG:
        dataset = Dataset.open(dataset_dir)
        with torch.device(device):  # made where it trains: its tables are as large as the data set's
            model = LogisticRegression(dataset.num_dense, dataset.table_sizes)
        return train_model(model, dataset_dir, settings, outputs, device, info={"baseline": name})
    if not name.startswith(NASREC_PREFIX) or arch is None:
        raise ValueError(f"unknown baseline {name!r} (or no architecture given for it)")
    return train_final(arch, dataset_dir, settings, outputs, device)
