"""Supernet warm-up at one warm-up level, and the check that it learned something.

A level is a fraction of the warm-up's *data budget*: ``epochs`` passes over the training split.
A pass reads the split as the reference's loader does (:func:`sigeo.data.store.batch_ranges`): cut
into ``shards`` contiguous shards, each cut into whole batches, the batches taken round-robin over
the shards, so that any prefix of the pass samples the whole period the split covers rather than
its first hours. Level p trains the first ``floor(p * epochs * B)`` steps of the stream that repeats
that pass (B whole batches), so 10 % of 5 epochs is the first half of a pass, and 100 % is all five
passes. A shard's remainder of less than a batch is not trained on (the reference reads it as a
partial batch it does not back-propagate). Level 0 saves the initialised supernet (the reference
cannot produce it: zero steps trip its schedule's assertion).

Validation measures what the searches use: a fixed panel of architectures drawn from the config's
seed, as the searches draw candidates (``val_panel``), and the full path (``val_full_path``), each
against the log loss of predicting validation's own positive rate (``base_rate_logloss``, the best
constant). A supernet whose full path or panel does not beat that by ``LEARNED_MARGIN`` has not
learned: ``learned`` is false and the log says so, so that no table reports proxies measured in an
untrained supernet as if it were warmed up. ``val`` keeps the reference's measurement: a fresh
random path per batch.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data.store import Dataset, Split, batch_ranges
from .io import SUPERNET_FILE, TrainingOutputs, atomic_path, resume_path, write_json
from .space.choice import Architecture, SearchSpace, full_path, get_space, sample_architecture
from .space.sampler import PathSampler
from .space.supernet import SuperNet
from .train import (
    LR_MIN,
    Checkpointer,
    TrainSettings,
    base_rate_logloss,
    device_name,
    evaluate,
    param_count,
    to_device,
    train_loop,
)

log = logging.getLogger(__name__)

#: stream of the config seed the validation panel is drawn from (apart from every other random choice)
PANEL_STREAM = 16


@dataclass(frozen=True)
class WarmupSettings:
    """The config's ``warmup`` section, with the run's seed, space and reading order and the devices'
    mixed precision (built by :func:`sigeo.config.load_settings`; config/schema.yaml documents each key)."""

    batch_size: int
    lr: float
    strategy: str
    anypath_choice: str
    use_layernorm: bool
    full_path_steps: int
    weight_sharing: str
    eval_batch_size: int
    eval_rows: int | None
    checkpoint_minutes: float
    log_every: int
    num_blocks: int
    seed: int
    mixed_precision: bool
    epochs: float
    lr_floor: float
    full_path_min: float
    panel_size: int
    eval_every: int
    space_widths: dict[str, list[int]] | None  # the config's space_widths (None: the paper's widths)
    checkpoint_dir: str | None  # folder of resume.pt (None: beside the outputs), see io.resume_path
    shards: int


def build_supernet(
    space: SearchSpace, dataset: Dataset, settings: WarmupSettings, device: torch.device | None = None
) -> SuperNet:
    """The supernet for this data set, initialised from the config's seed (same init at every level),
    made directly on ``device`` (default: the CPU).

    At the paper's table sizes it holds hundreds of millions of parameters, whose initialisation on
    the GPU takes a moment and on one or two CPU threads minutes. The initial weights come from the
    device's random generator, so a GPU warm-up starts from other weights than a CPU one.
    """
    torch.manual_seed(settings.seed)
    with torch.device(device or "cpu"):
        return _supernet(space, dataset, settings)


def load_supernet(
    path: str | os.PathLike, space: SearchSpace, dataset: Dataset, settings: WarmupSettings, device: torch.device
) -> SuperNet:
    """The warmed-up supernet saved at ``path``, on ``device``, without initialising weights it replaces.

    The modules are made on the meta device (shapes only: no memory, no initialisation), given
    uninitialised storage on ``device`` and filled from the (memory-mapped) file; the one tensor a
    saved state does not hold, the stem's row offsets, is computed again.
    """
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    with torch.device("meta"):
        net = _supernet(space, dataset, settings)
    net.to_empty(device=device)
    net.load_state_dict(state)
    net.stem.reset_offsets()
    return net


def _supernet(space: SearchSpace, dataset: Dataset, settings: WarmupSettings) -> SuperNet:
    return SuperNet(
        space,
        dataset.num_dense,
        dataset.table_sizes,
        num_blocks=settings.num_blocks,
        use_layernorm=settings.use_layernorm,
        weight_sharing=settings.weight_sharing,
    )


def warmup_steps(level: float, batches_per_epoch: int, epochs: float) -> int:
    """Steps of warm-up level ``level``: that fraction of ``epochs`` passes of ``batches_per_epoch`` batches."""
    return math.floor(level * epochs * batches_per_epoch)


def epoch_batches(split: Split, batch_size: int, shards: int) -> np.ndarray:
    """The ``(start, stop)`` rows of one pass's whole batches, in the order they are trained on."""
    ranges = batch_ranges(len(split), batch_size, shards, drop_last=True)
    if len(ranges) == 0:
        raise ValueError(
            f"the training split has {len(split)} rows: its {shards} shards hold no whole batch of {batch_size}"
        )
    return ranges


def stream_batches(split: Split, ranges: np.ndarray, first_step: int) -> Iterator[tuple[np.ndarray, ...]]:
    """The batches of the stream that repeats the pass ``ranges`` over ``split``, from ``first_step`` on."""
    offset = first_step % len(ranges)
    while True:
        yield from split.read(ranges[offset:])
        offset = 0


def panel_architectures(space: SearchSpace, num_blocks: int, size: int, seed: int) -> list[Architecture]:
    """The validation panel: ``size`` architectures drawn as the searches draw candidates, from ``seed``.

    The same seed gives the same panel at every level, so levels are compared on the same subnets.
    """
    rng = np.random.default_rng([seed, PANEL_STREAM])
    return [sample_architecture(rng, space, num_blocks) for _ in range(size)]


@torch.no_grad()
def panel_metrics(
    net: SuperNet,
    paths: Sequence[Architecture],
    split: Split,
    batch_size: int,
    device: torch.device,
    max_rows: int | None = None,
) -> dict:
    """Validation log loss and AUC of each path inside ``net``, and their means over the panel."""
    was_training = net.training
    net.eval()
    each = [
        evaluate(lambda batch, path=path: net(batch[0], batch[1], path), split, batch_size, device, max_rows)
        for path in paths
    ]
    net.train(was_training)
    losses, aucs = [m["logloss"] for m in each], [m["auc"] for m in each]
    return {
        "logloss_mean": float(np.mean(losses)),
        "auc_mean": float(np.mean(aucs)),
        "logloss_median": float(np.median(losses)),
        "logloss_max": float(np.max(losses)),
        "size": len(paths),
        "logloss": losses,
        "auc": aucs,
    }


LEARNED_MARGIN = 1e-3


def learned(full_path_logloss: float, panel_logloss_mean: float, base: float) -> bool:
    """Whether both the full path and the panel's mean beat the base rate's log loss on validation by
    at least ``LEARNED_MARGIN`` nats.

    The margin keeps a supernet that merely reproduces the base rate (its log loss then equals the
    base rate's up to rounding) from counting as learned; a gain of a thousandth of a nat is below
    what any validation split here can resolve.
    """
    return bool(full_path_logloss < base - LEARNED_MARGIN and panel_logloss_mean < base - LEARNED_MARGIN)


def supernet_outputs(folder: str | Path) -> TrainingOutputs:
    """A warm-up's outputs under their conventional names in ``folder``."""
    return TrainingOutputs.in_folder(folder, SUPERNET_FILE)


def warm_up(
    dataset_dir: str | Path,
    space_name: str,
    level: float,
    settings: WarmupSettings,
    outputs: TrainingOutputs,
    device: torch.device,
) -> dict:
    """Warm up and write the supernet's weights, its train log and ``metrics`` (last) to ``outputs``
    (:func:`supernet_outputs` gives the conventional names in one folder)."""
    dataset = Dataset.open(dataset_dir)
    space = get_space(space_name, settings.space_widths)
    net = build_supernet(space, dataset, settings, device).to(device)  # .to: nothing left elsewhere
    train, val = dataset.split("train"), dataset.split("val")
    ranges = epoch_batches(train, settings.batch_size, settings.shards)
    steps = warmup_steps(level, len(ranges), settings.epochs)
    base = base_rate_logloss(dataset.meta["positive_rate"]["val"])
    widest = full_path(space, settings.num_blocks)
    panel = panel_architectures(space, settings.num_blocks, settings.panel_size, settings.seed)
    sampler = PathSampler(
        space,
        settings.num_blocks,
        settings.strategy,
        settings.anypath_choice,
        settings.full_path_steps,
        settings.seed,
        settings.full_path_min,
    )
    loop = TrainSettings(settings.lr, settings.batch_size, checkpoint_minutes=settings.checkpoint_minutes,
                         log_every=settings.log_every, mixed_precision=settings.mixed_precision,
                         lr_min=settings.lr * settings.lr_floor or LR_MIN)  # fmt: skip
    checkpointer = Checkpointer(resume_path(outputs.folder, settings.checkpoint_dir), settings.checkpoint_minutes * 60)
    log.info("warm-up level %s: %d steps of %d rows (%s of %s epochs of %d batches over %d shards) on %s", level,
             steps, settings.batch_size, level, settings.epochs, len(ranges), settings.shards,
             device_name(device))  # fmt: skip

    def validate() -> tuple[dict, dict]:
        full = evaluate(
            lambda batch: net(batch[0], batch[1], widest), val, settings.eval_batch_size, device, settings.eval_rows
        )
        return full, panel_metrics(net, panel, val, settings.eval_batch_size, device, settings.eval_rows)

    curve: list[dict] = []

    def after_step(step: int) -> None:
        if settings.eval_every and (step % settings.eval_every == 0 or step == steps):
            full, pan = validate()
            curve.append({"step": step, "full_path_logloss": full["logloss"], "full_path_auc": full["auc"],
                          "panel_logloss_mean": pan["logloss_mean"], "panel_auc_mean": pan["auc_mean"]})  # fmt: skip
            log.info("step %d/%d validation: full path %.5f (AUC %.4f), panel mean %.5f (AUC %.4f), base rate %.5f",
                     step, steps, full["logloss"], full["auc"], pan["logloss_mean"], pan["auc_mean"], base)  # fmt: skip

    def restore(extra: dict) -> None:
        sampler.restore(extra["sampler"])
        curve[:] = extra["curve"]

    state = train_loop(
        net,
        lambda batch, step: net(batch[0], batch[1], sampler.sample(step)),
        lambda first: (to_device(b, device) for b in stream_batches(train, ranges, first)),
        steps,
        loop,
        device,
        checkpointer,
        extra_state=lambda: {"sampler": sampler.state(), "curve": list(curve)},
        restore_extra=restore,
        after_step=after_step,
    )
    net.eval()
    val_full, val_panel = validate()
    eval_sampler = PathSampler(
        space, settings.num_blocks, settings.strategy, settings.anypath_choice, 0, settings.seed + 1
    )
    val_random = evaluate(
        lambda batch: net(batch[0], batch[1], eval_sampler.sample()), val, settings.eval_batch_size, device,
        settings.eval_rows,
    )  # fmt: skip
    ok = learned(val_full["logloss"], val_panel["logloss_mean"], base)
    report_learning(level, state.step, ok, val_full, val_panel, base)
    with atomic_path(outputs.weights, ".pt") as tmp:
        torch.save(net.state_dict(), tmp)
    write_log(outputs.train_log, state.log)
    metrics = {
        "level": level,
        "space": space.name,
        "epochs": settings.epochs,
        "rows": state.rows,
        "steps": state.step,
        "wall_seconds": round(state.seconds, 3),
        "device": device_name(device),
        "base_rate_logloss": base,
        "val_full_path": val_full,
        "val_panel": val_panel,
        "full_path_gap_to_base_rate": base - val_full["logloss"],
        "panel_gap_to_base_rate": base - val_panel["logloss_mean"],
        "learned": ok,
        "val": val_random,
        "val_curve": curve,
        **param_count(net),
    }
    write_json(outputs.metrics, metrics)
    checkpointer.remove()
    return metrics


def report_learning(level: float, steps: int, ok: bool, full: dict, panel: dict, base: float) -> None:
    """One log line with the verdict: a warning when a trained supernet did not beat the base rate."""
    numbers = (f"full path {full['logloss']:.5f}, panel mean {panel['logloss_mean']:.5f} over {panel['size']} "
               f"subnets, base rate {base:.5f}")  # fmt: skip
    if ok:
        log.info("warm-up level %s learned: %s", level, numbers)
    elif steps == 0:
        log.info("warm-up level %s is the untrained supernet (learned = false): %s", level, numbers)
    else:
        log.warning("warm-up level %s did NOT learn (%d steps): %s; proxies measured in it are measured in a "
                    "supernet no better than the base rate", level, steps, numbers)  # fmt: skip


def write_log(path: Path, rows: list[dict]) -> None:
    with atomic_path(path, ".csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["step", "rows", "loss", "lr", "seconds"])
        writer.writeheader()
        writer.writerows(rows)
