"""Final training of exported architectures, and selection of the best by validation log loss.

Each architecture is trained from scratch as a standalone network on ``train`` and evaluated on
``val`` and ``test``. The winner is the lowest *val* log loss; its test figures are reported but
never used to choose (the reference's README selects on test, REFERENCE §7.3).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .data.store import Dataset
from .io import read_json, write_json
from .space.choice import Path as Architecture
from .space.subnet import StandaloneNet
from .train import (
    Checkpointer,
    TrainSettings,
    device_name,
    evaluate,
    flops_per_sample,
    param_count,
    to_device,
    train_loop,
)
from .warmup import write_log

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinalSettings:
    lr: float
    batch_size: int
    epochs: int
    eval_batch_size: int
    max_train_rows: int | None
    checkpoint_minutes: float
    log_every: int
    seed: int
    mixed_precision: bool = False

    @classmethod
    def from_config(cls, config: dict) -> FinalSettings:
        f = config["final"]
        return cls(
            **{k: f[k] for k in ("lr", "batch_size", "epochs", "eval_batch_size", "max_train_rows")},
            checkpoint_minutes=f["checkpoint_minutes"],
            log_every=f["log_every"],
            seed=config["seed"],
            mixed_precision=config["devices"]["mixed_precision"],
        )


def build_standalone(arch: Architecture, dataset: Dataset, seed: int) -> StandaloneNet:
    torch.manual_seed(seed)
    return StandaloneNet(arch, dataset.num_dense, dataset.table_sizes)


def train_model(
    model: nn.Module,
    dataset_dir: str | os.PathLike,
    settings: FinalSettings,
    out_dir: str | os.PathLike,
    device: torch.device,
    extra: dict | None = None,
) -> dict:
    """Train any network mapping (dense, sparse ids) to logits with the final-training recipe.

    Writes ``metrics.json`` (``extra`` first, then the run's figures), ``train_log.csv`` and the
    trained ``state_dict()`` as ``model.pt`` into ``out_dir``, so searched architectures and baselines
    are trained, measured and kept alike.
    """
    out_dir = Path(out_dir)
    dataset = Dataset.open(dataset_dir)
    model = model.to(device)
    train = dataset.split("train")
    if settings.max_train_rows:
        train = train.head(settings.max_train_rows)
    steps_per_epoch = len(train) // settings.batch_size
    total = steps_per_epoch * settings.epochs

    def batches(first: int):
        for step in range(first, total):
            start = (step % steps_per_epoch) * settings.batch_size
            yield to_device(train.batch(start, start + settings.batch_size), device)

    loop = TrainSettings(settings.lr, settings.batch_size, checkpoint_minutes=settings.checkpoint_minutes,
                         log_every=settings.log_every, mixed_precision=settings.mixed_precision)  # fmt: skip
    checkpointer = Checkpointer(out_dir / "resume.pt", settings.checkpoint_minutes * 60)
    log.info("final training: %d steps of %d on %s", total, settings.batch_size, device_name(device))
    state = train_loop(model, lambda batch, _: model(batch[0], batch[1]), batches, total, loop, device, checkpointer)
    model.eval()
    forward = lambda batch: model(batch[0], batch[1])  # noqa: E731
    metrics = {
        **(extra or {}),
        "steps": state.step,
        "rows": state.rows,
        "wall_seconds": round(state.seconds, 3),
        "device": device_name(device),
        "val": evaluate(forward, dataset.split("val"), settings.eval_batch_size, device),
        "test": evaluate(forward, dataset.split("test"), settings.eval_batch_size, device),
        **param_count(model),
        "flops_per_sample": flops_per_sample(model, to_device(dataset.split("val").batch(0, 64), device), forward),
    }
    write_log(out_dir / "train_log.csv", state.log)
    torch.save(model.state_dict(), out_dir / "model.pt")
    write_json(out_dir / "metrics.json", metrics)
    checkpointer.remove()
    return metrics


def train_final(
    arch: Architecture,
    dataset_dir: str | os.PathLike,
    settings: FinalSettings,
    out_dir: str | os.PathLike,
    device: torch.device,
) -> dict:
    """Train ``arch`` from scratch as a standalone network (see :func:`train_model`)."""
    model = build_standalone(arch, Dataset.open(dataset_dir), settings.seed)
    return train_model(model, dataset_dir, settings, out_dir, device, extra={"arch_hash": arch.hash()})


def select_best(metric_paths: Sequence[str | os.PathLike], arch_paths: Sequence[str | os.PathLike]) -> dict:
    """The candidate with the lowest validation log loss, with its test figures and architecture.

    Diverged candidates (``"status": "diverged"``) are never selected; ``"diverged"`` counts them.
    """
    candidates, diverged = [], 0
    for rank, (m_path, a_path) in enumerate(zip(metric_paths, arch_paths, strict=True)):
        m = read_json(m_path)
        if m.get("status") == "diverged":
            diverged += 1
            continue
        candidates.append(
            {"rank": rank, "metrics": m, "arch": read_json(a_path), "model": Path(m_path).with_name("model.pt")}
        )
    if not candidates:
        raise ValueError(f"all {diverged} candidates diverged ({metric_paths[0]} ...); none can be selected")
    best = min(candidates, key=lambda c: c["metrics"]["val"]["logloss"])
    return {
        "selected_by": "val logloss",
        "rank": best["rank"],
        "val": best["metrics"]["val"],
        "test": best["metrics"]["test"],
        "params": best["metrics"]["params"],
        "params_dense": best["metrics"]["params_dense"],
        "flops_per_sample": best["metrics"]["flops_per_sample"],
        "arch": best["arch"],
        "model": str(best["model"]),
        "diverged": diverged,
        "candidates": [{"rank": c["rank"], "val_logloss": c["metrics"]["val"]["logloss"]} for c in candidates],
    }
