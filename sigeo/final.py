"""Final training of exported architectures, and selection of the best by validation log loss.

Each architecture is trained from scratch as a standalone network on ``train`` and evaluated on
``val`` and ``test``. The winner is the lowest *val* log loss; its test figures are reported but
never used to choose (the reference's README selects on test, docs/reference.md §7.3).

Two recipes (``final.schedule``). ``plateau`` trains to convergence: up to ``max_epochs`` epochs,
each reading the training rows in a fresh seeded order, validation every ``eval_every`` steps (an
epoch by default), the rate cut on a plateau, a stop after ``patience`` evaluations without a new
best, and the best-on-validation weights kept. ``cosine`` is the paper's: ``epochs`` passes under a
fixed warm-up + cosine schedule, the last weights kept. An epoch reads the rows in a fresh seeded
block order (``shuffle_block_rows``), or, without it, as the paper's loader does: round-robin over
``shards`` contiguous shards (:func:`sigeo.data.store.batch_ranges`).

With ``final.retrain_on_trainval`` the winner is then trained again from scratch on train followed
by val (:func:`retrain_final`, a view of the two memory-mapped splits) for the epochs its train-only
run took, as the paper does before it reports test figures; that model becomes the found one.

A run whose training loss stops being finite, or whose validation log loss exceeds
``divergence_factor`` × the base rate's, is reported as diverged (``status``, ``diverged`` with its
step and reason, null ``val`` and ``test``) rather than failing its job; :func:`select_best` never
picks it.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data.store import ConcatSplit, Dataset, Split, batch_ranges
from .errors import SigeoError
from .io import MODEL_FILE, TrainingOutputs, atomic_path, read_json, resume_path, write_json
from .space.choice import Architecture
from .space.subnet import StandaloneNet, nasrec_mflops
from .train import (
    Batch,
    Checkpointer,
    LoopState,
    TrainingDiverged,
    TrainSettings,
    base_rate_logloss,
    device_name,
    evaluate,
    flops_per_sample,
    param_count,
    to_device,
    train_loop,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinalSettings:
    """The config's ``final`` section, with the run's seed and reading order and the devices' mixed
    precision (built by :func:`sigeo.config.load_settings`; config/schema.yaml documents each key)."""

    lr: float
    batch_size: int
    epochs: int
    eval_batch_size: int
    max_train_rows: int | None
    checkpoint_minutes: float
    log_every: int
    seed: int
    mixed_precision: bool
    schedule: str
    max_epochs: int
    eval_every: int | None
    patience: int
    plateau_factor: float
    plateau_patience: int
    shuffle_block_rows: int | None
    embedding_l2: float
    adagrad_eps: float
    divergence_factor: float
    use_layernorm: bool
    checkpoint_dir: str | None
    shards: int

    @property
    def net(self) -> dict:
        """Keyword arguments of :class:`StandaloneNet` besides the architecture and the data's shapes."""
        return {"use_layernorm": self.use_layernorm}

    @property
    def epochs_to_run(self) -> int:
        """The fixed number of epochs (cosine) or the most (plateau)."""
        return self.max_epochs if self.schedule == "plateau" else self.epochs


def build_standalone(
    arch: Architecture, dataset: Dataset, settings: FinalSettings, device: torch.device | None = None
) -> StandaloneNet:
    """``arch``'s network initialised from the seed, made directly on ``device`` (default: the CPU).

    Its embedding tables are as large as the data set's; made on the GPU they skip a slow CPU
    initialisation and the copy. The initial weights come from the device's random generator, so
    a GPU run starts from other weights than a CPU run with the same seed.
    """
    torch.manual_seed(settings.seed)
    with torch.device(device or "cpu"):
        return StandaloneNet(arch, dataset.num_dense, dataset.table_sizes, **settings.net)


@functools.lru_cache(maxsize=1)
def epoch_order(rows: int, block_rows: int, seed: int, epoch: int) -> np.ndarray:
    """The row order of one epoch: blocks of ``block_rows`` consecutive rows in a random order, the
    rows of each block shuffled, drawn from the generator seeded by ``(seed, epoch)``.

    A batch then reads rows from one or two blocks, so reads of the memory-mapped split stay within a
    few megabytes; and the order depends on nothing but the epoch, so a resumed run reads the same.
    """
    rng = np.random.default_rng([seed, epoch])
    starts = np.arange(0, rows, block_rows)
    pieces = [start + rng.permutation(min(block_rows, rows - start)) for start in starts[rng.permutation(len(starts))]]
    return np.concatenate(pieces)


def read_rows(split: Split | ConcatSplit, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The given rows of a split in memory, in ascending order (reads stay sequential)."""
    return split.take(np.sort(rows))


def epoch_ranges(rows: int, settings: FinalSettings) -> np.ndarray | None:
    """The ``(start, stop)`` of an epoch's batches when it is read in the paper's order (round-robin
    over ``shards``, whole batches); None when each epoch is shuffled."""
    if settings.shuffle_block_rows is not None:
        return None
    return batch_ranges(rows, settings.batch_size, settings.shards, drop_last=True)


def training_batches(
    train: Split | ConcatSplit, settings: FinalSettings, steps_per_epoch: int, total: int, device: torch.device
) -> Callable[[int], Iterator[Batch]]:
    """``batches(first_step)`` for :func:`train_loop`: the paper's order without ``shuffle_block_rows``."""
    size = settings.batch_size
    ranges = epoch_ranges(len(train), settings)

    def batches(first: int) -> Iterator[Batch]:
        for step in range(first, total):
            epoch, index = divmod(step, steps_per_epoch)
            if ranges is not None:
                yield to_device(train.batch(*(int(row) for row in ranges[index])), device)
            else:
                order = epoch_order(len(train), settings.shuffle_block_rows, settings.seed, epoch)
                yield to_device(read_rows(train, order[index * size : (index + 1) * size]), device)

    return batches


def training_split(dataset: Dataset, settings: FinalSettings) -> Split:
    """The rows a final training learns from: ``train``, or its first ``max_train_rows``."""
    train = dataset.split("train")
    return train.head(settings.max_train_rows) if settings.max_train_rows else train


def epoch_steps(rows: int, settings: FinalSettings, dataset_dir: str | os.PathLike) -> int:
    """Whole batches in an epoch of ``rows`` rows (in the paper's order: whole batches of each shard);
    an error when not even one fits."""
    ranges = epoch_ranges(rows, settings)
    steps = rows // settings.batch_size if ranges is None else len(ranges)
    if steps == 0:
        raise SigeoError(f"{dataset_dir}: {rows} training rows hold no whole batch of {settings.batch_size}"
                         + ("" if ranges is None else f" in any of its {settings.shards} shards"))  # fmt: skip
    return steps


def loop_settings(settings: FinalSettings, **changes) -> TrainSettings:
    """The training loop's settings for the recipe of ``settings`` (``changes``: the per-run ones)."""
    loop = TrainSettings(
        settings.lr,
        settings.batch_size,
        checkpoint_minutes=settings.checkpoint_minutes,
        log_every=settings.log_every,
        mixed_precision=settings.mixed_precision,
        schedule=settings.schedule,
        plateau_factor=settings.plateau_factor,
        plateau_patience=settings.plateau_patience,
        patience=settings.patience,
        embedding_l2=settings.embedding_l2,
        adagrad_eps=settings.adagrad_eps,
    )
    return replace(loop, **changes)


def train_model(
    model: nn.Module,
    dataset_dir: str | os.PathLike,
    settings: FinalSettings,
    outputs: TrainingOutputs,
    device: torch.device,
    info: Mapping[str, object] | None = None,
) -> dict:
    """Train ``model`` (``model(dense, sparse_ids) -> logits``, already initialised) with the recipe of
    ``settings``; write its weights, train log and ``metrics.json`` to ``outputs``
    (``TrainingOutputs.in_folder(folder)``: ``model.pt``, ``train_log.csv`` and ``metrics.json`` there).

    ``info`` heads ``metrics.json`` (e.g. the architecture's hash and the network's arguments). A
    diverged run is reported in ``metrics.json`` (``model.pt`` then holds the weights it stopped
    with) and returned, not raised.
    """
    dataset = Dataset.open(dataset_dir)
    model = model.to(device)
    train = training_split(dataset, settings)
    steps_per_epoch = epoch_steps(len(train), settings, dataset_dir)
    base = base_rate_logloss(dataset.meta["positive_rate"]["train"])
    limit = settings.divergence_factor * base
    val_split = dataset.split("val")

    def validate(_: int) -> dict[str, float]:
        metrics = evaluate(lambda batch: model(batch[0], batch[1]), val_split, settings.eval_batch_size, device)
        return {"logloss": metrics["logloss"], "auc": metrics["auc"]}

    loop = loop_settings(settings, eval_every=settings.eval_every or steps_per_epoch, divergence_logloss=limit)
    head = {
        **(info or {}),
        "schedule": settings.schedule,
        "steps_per_epoch": steps_per_epoch,
        "base_rate_logloss": base,
        "divergence_logloss": limit,
    }
    total = steps_per_epoch * settings.epochs_to_run
    return fit(model, dataset, train, settings, loop, total, steps_per_epoch, device, outputs, head, validate)


def fit(
    model: nn.Module,
    dataset: Dataset,
    train: Split | ConcatSplit,
    settings: FinalSettings,
    loop: TrainSettings,
    total: int,
    steps_per_epoch: int,
    device: torch.device,
    outputs: TrainingOutputs,
    head: Mapping[str, object],
    validate: Callable[[int], dict[str, float]] | None = None,
) -> dict:
    """Train ``model`` (on ``device``) for up to ``total`` steps over ``train`` and write its outputs
    (:func:`finish`): ``val`` and ``test`` figures at the end, ``val`` null without ``validate``
    (a retraining that learned from the validation rows)."""

    def predict(batch: Batch) -> torch.Tensor:
        return model(batch[0], batch[1])

    test_split = dataset.split("test")

    def report(state: LoopState, status: str, diverged: dict | None, val: dict | None, test: dict | None) -> dict:
        return {
            **head,
            "status": status,
            "diverged": diverged,
            **progress(state, steps_per_epoch),
            "device": device_name(device),
            "val": val,
            "test": test,
            **param_count(model),
            "flops_2x_all_blocks": flops_per_sample(model, to_device(test_split.batch(0, 64), device), predict),
        }

    checkpointer = Checkpointer(resume_path(outputs.folder, settings.checkpoint_dir), settings.checkpoint_minutes * 60)
    log.info("final training (%s): up to %d steps of %d over %d rows on %s", loop.schedule, total,
             settings.batch_size, len(train), device_name(device))  # fmt: skip
    try:
        state = train_loop(
            model,
            lambda batch, _: predict(batch),
            training_batches(train, settings, steps_per_epoch, total, device),
            total,
            loop,
            device,
            checkpointer,
            validate=validate,
            steps_per_epoch=steps_per_epoch,
        )
    except TrainingDiverged as exc:
        log.warning("diverged at step %d: %s", exc.step, exc.reason)
        metrics = report(exc.state, "diverged", {"step": exc.step, "reason": exc.reason}, None, None)
        return finish(model, exc.state, metrics, outputs, checkpointer)
    model.eval()
    val = None if validate is None else evaluate(predict, dataset.split("val"), settings.eval_batch_size, device)
    test = evaluate(predict, test_split, settings.eval_batch_size, device)
    return finish(model, state, report(state, "ok", None, val, test), outputs, checkpointer)


def progress(state: LoopState, steps_per_epoch: int) -> dict:
    """What ``metrics.json`` says about the run: its length, best evaluation, stop and curve."""
    best = state.best or (state.curve[-1] if state.curve else None)
    return {
        "steps": state.step,
        "rows": state.rows,
        "epochs": round(state.step / steps_per_epoch, 4),
        "wall_seconds": round(state.seconds, 3),
        "stop_reason": state.stop_reason,
        "best": None if best is None else {k: best[k] for k in ("step", "epoch", "logloss")},
        "curve": state.curve,
    }


def finish(
    model: nn.Module, state: LoopState, metrics: dict, outputs: TrainingOutputs, checkpointer: Checkpointer
) -> dict:
    """The weights, the train log, then ``metrics`` (the job's sign of completion)."""
    with atomic_path(outputs.weights, ".pt") as tmp:
        torch.save(model.state_dict(), tmp)
    write_train_log(outputs.train_log, state)
    write_json(outputs.metrics, metrics)
    checkpointer.remove()
    return metrics


def write_train_log(path: Path, state: LoopState) -> None:
    """One row per logged step (training loss) or evaluation (``val_*``), merged on the step."""
    train = pd.DataFrame(state.log, columns=["step", "rows", "loss", "lr", "seconds"])
    curve = pd.DataFrame(state.curve, columns=["step", "epoch", "logloss", "auc"])
    curve = curve.rename(columns={"logloss": "val_logloss", "auc": "val_auc"})
    frame = train.merge(curve, on="step", how="outer").sort_values("step")
    with atomic_path(path, ".csv") as tmp:
        frame.to_csv(tmp, index=False)


def train_final(
    arch: Architecture,
    dataset_dir: str | os.PathLike,
    settings: FinalSettings,
    outputs: TrainingOutputs,
    device: torch.device,
) -> dict:
    """Train ``arch`` from scratch as a :class:`StandaloneNet`; outputs as :func:`train_model`, with the
    network's MFLOPs in NASRec's convention (``mflops_nasrec``) beside the flop counter's figure."""
    dataset = Dataset.open(dataset_dir)
    model = build_standalone(arch, dataset, settings, device)
    info = {
        "arch_hash": arch.hash(),
        "net": settings.net,
        "mflops_nasrec": nasrec_mflops(arch, dataset.num_dense, dataset.num_sparse),
    }
    return train_model(model, dataset_dir, settings, outputs, device, info)


def usable(metrics: Mapping) -> bool:
    """Whether a run finished with a finite validation log loss (diverged runs have none)."""
    if metrics.get("status", "ok") != "ok" or metrics.get("diverged") or metrics.get("val") is None:
        return False
    loss = metrics["val"].get("logloss")
    return loss is not None and math.isfinite(loss)


@dataclass(frozen=True)
class Replay:
    """What a retraining on train + val repeats of the selected run, having no validation left to stop it.

    ``epochs``: the epochs the run trained to the weights it was tested with (under ``plateau`` to its
    best validation, under ``cosine`` its whole schedule, whose last weights it keeps). ``cuts``: the
    epochs at which its plateau schedule cut the rate on the way there. Epochs, not steps, because
    train + val holds more rows than train: the paper's retraining is one pass over train + val where
    the selection trained one pass over train.
    """

    epochs: float
    cuts: tuple[float, ...] = ()

    @classmethod
    def of(cls, metrics: Mapping, source: str | os.PathLike) -> Replay:
        """The replay of a final training from its ``metrics.json`` (read from ``source``)."""
        per_epoch = metrics["steps_per_epoch"]
        if metrics["schedule"] == "cosine":
            return cls(metrics["steps"] / per_epoch)
        best = metrics["best"]
        cuts = []
        for entry in metrics["curve"]:
            if entry["step"] >= best["step"]:
                break
            if "lr_after" not in entry:
                raise SigeoError(f"{source}: its validation curve lacks 'lr_after' (the rate each validation left), "
                                 "so its plateau schedule cannot be repeated; delete it to train it again")  # fmt: skip
            if entry["lr_after"] < entry["lr"]:
                cuts.append(entry["step"] / per_epoch)
        return cls(best["step"] / per_epoch, tuple(cuts))

    def steps(self, steps_per_epoch: int) -> tuple[int, tuple[int, ...]]:
        """The retraining's step count (at least one) and the steps of its rate cuts, for epochs of that many steps."""
        return max(1, round(self.epochs * steps_per_epoch)), tuple(round(c * steps_per_epoch) for c in self.cuts)


def retrain_final(
    arch: Architecture,
    dataset_dir: str | os.PathLike,
    settings: FinalSettings,
    replay: Replay,
    outputs: TrainingOutputs,
    device: torch.device,
) -> dict:
    """Train ``arch`` from scratch on train followed by val (the rows :func:`train_final` learns from,
    then the whole validation split) for ``replay``'s epochs, and test it; outputs as :func:`train_model`.

    The recipe is the selection run's: ``cosine`` runs its schedule over the replayed epochs,
    ``plateau`` becomes ``stepped`` (its warm-up and rate, cut where the selection run's was). The
    model's ``metrics.json`` has ``trained_on: train+val``, ``replay`` and a null ``val``.
    """
    dataset = Dataset.open(dataset_dir)
    trainval = ConcatSplit((training_split(dataset, settings), dataset.split("val")))
    steps_per_epoch = epoch_steps(len(trainval), settings, dataset_dir)
    total, cuts = replay.steps(steps_per_epoch)
    schedule = "cosine" if settings.schedule == "cosine" else "stepped"
    loop = loop_settings(settings, schedule=schedule, lr_cuts=cuts)
    head = {
        "arch_hash": arch.hash(),
        "net": settings.net,
        "trained_on": "train+val",
        "train_rows": len(trainval),
        "replay": {"epochs": replay.epochs, "lr_cut_epochs": list(replay.cuts), "lr_cut_steps": list(cuts)},
        "schedule": schedule,
        "steps_per_epoch": steps_per_epoch,
    }
    model = build_standalone(arch, dataset, settings, device)
    return fit(model, dataset, trainval, settings, loop, total, steps_per_epoch, device, outputs, head)


def select_best(
    metric_paths: Sequence[str | os.PathLike],
    arch_paths: Sequence[str | os.PathLike],
    retrained: str | os.PathLike | None = None,
    model_paths: Sequence[str | os.PathLike] | None = None,
) -> dict:
    """The candidate with the lowest validation log loss, with its test figures, architecture and
    weights (``model_paths``, in the order of ``metric_paths``; default: ``model.pt`` beside each
    ``metrics.json``, as beside ``retrained``); diverged candidates (or any without a finite validation
    log loss) are skipped and counted. Fails when every candidate diverged.

    ``retrained``: the ``metrics.json`` of the winner retrained on train + val (:func:`retrain_final`).
    It then is the found model: ``test`` and ``model`` are its, ``found_model`` says ``train+val``,
    and ``train_only`` keeps the selection run's test figures and weights; ``trainval`` holds the
    retraining's (null without one). A retraining that diverged leaves the train-only model the found one.
    """
    if model_paths is None:
        model_paths = [Path(m_path).with_name(MODEL_FILE) for m_path in metric_paths]
    candidates = []
    for rank, (m_path, a_path, w_path) in enumerate(zip(metric_paths, arch_paths, model_paths, strict=True)):
        m = read_json(m_path)
        candidates.append({"rank": rank, "metrics": m, "arch": a_path, "model": w_path, "usable": usable(m)})
        if not candidates[-1]["usable"]:
            log.warning("candidate %d (%s) diverged or has no finite validation log loss: skipped", rank, m_path)
    finished = [c for c in candidates if c["usable"]]
    if not finished:
        raise SigeoError(f"all {len(candidates)} candidates diverged, none to select: {metric_paths[0]} ...")
    best = min(finished, key=lambda c: c["metrics"]["val"]["logloss"])
    metrics = best["metrics"]
    train_only = {
        "trained_on": "train",
        "val": metrics["val"],
        "test": metrics["test"],
        "model": str(Path(best["model"])),
        "epochs": metrics["epochs"],
        "best_epoch": (metrics["best"] or {}).get("epoch"),
        "steps": metrics["steps"],
    }
    trainval = None if retrained is None else retraining(retrained, metrics["arch_hash"])
    found = trainval if trainval is not None and trainval["status"] == "ok" else train_only
    if trainval is not None and found is train_only:
        log.warning("the retraining on train+val (%s) diverged: the train-only model stays the found model", retrained)
    return {
        "selected_by": "val logloss",
        "rank": best["rank"],
        "found_model": found["trained_on"],
        "val": metrics["val"],
        "test": found["test"],
        "params": metrics["params"],
        "params_dense": metrics["params_dense"],
        "flops_2x_all_blocks": metrics["flops_2x_all_blocks"],
        "mflops_nasrec": metrics.get("mflops_nasrec"),
        "arch": read_json(best["arch"]),
        "model": found["model"],
        "train_only": train_only,
        "trainval": trainval,
        "diverged": len(candidates) - len(finished),
        "candidates": [
            {
                "rank": c["rank"],
                "val_logloss": c["metrics"]["val"]["logloss"] if c["usable"] else None,
                "diverged": not c["usable"],
            }
            for c in candidates
        ],
    }


def retraining(path: str | os.PathLike, arch_hash: str) -> dict:
    """``best.json``'s summary of a retraining on train + val, checked to be of the selected architecture."""
    metrics = read_json(path)
    if metrics.get("arch_hash") != arch_hash:
        raise SigeoError(f"{path}: retrained another architecture than the one selected (arch_hash differs)")
    return {
        "trained_on": metrics["trained_on"],
        "status": metrics["status"],
        "test": metrics["test"],
        "model": str(Path(path).with_name(MODEL_FILE)),
        "epochs": metrics["replay"]["epochs"],
        "steps": metrics["steps"],
        "rows": metrics["train_rows"],
    }
