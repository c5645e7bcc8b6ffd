"""Training and evaluation shared by warm-up, final training and the correlation study.

Adagrad (eps 1e-2) with a linear-warm-up cosine schedule and global gradient clipping at 5.0, BCE
with logits, metrics log loss / ROC-AUC / accuracy (docs/reference.md §3.2, §7). Embedding gradients are
sparse, so the optimizer touches only the rows of the batch. Long loops checkpoint atomically every
few minutes and resume to the same weights as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, roc_auc_score
from torch import nn

from .data.store import Split
from .errors import SigeoError
from .io import atomic_path

log = logging.getLogger(__name__)

LR_MIN = 1e-8
CLIP_NORM = 5.0
ADAGRAD_EPS = 1e-2

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


SCHEDULES = ("cosine", "plateau", "stepped")


@dataclass(frozen=True)
class TrainSettings:
    """How :func:`train_loop` trains.

    ``schedule``: ``cosine`` = a linear warm-up over ``warmup_fraction`` of the steps, then cosine down
    to 1e-8, every step run and the last weights kept (the paper's recipe); ``plateau`` = a constant
    rate cut by ``plateau_factor`` once ``plateau_patience`` evaluations in a row bring no new best
    validation log loss, a stop after ``patience`` such evaluations, and the best-on-validation
    weights restored at the end (FuxiCTR's and BARS's practice), after the same linear warm-up over
    ``warmup_fraction`` of the first epoch: Adagrad's first steps move every weight by about the
    full rate whatever its gradient, which without a warm-up swings the logits by tens. ``stepped``
    = plateau's warm-up and constant rate, cut by ``plateau_factor`` at each step of ``lr_cuts``
    and never by validation: it repeats a plateau run's rate where there is no validation to watch
    (the retraining on train + val). Each plateau validation records ``lr_after``, the rate it left.
    ``eval_every``: steps between calls of ``validate`` (0: only after the last step).
    ``embedding_l2``: weight of the squared L2 norm of the distinct embedding rows a batch looks up
    (a penalty on the whole tables would make every sparse update dense). ``divergence_logloss``: a
    validation log loss above it, or not finite, ends the run as diverged (None: validation never
    ends a run). ``adagrad_eps``: Adagrad's ``eps``, added to the root of each weight's summed squared
    gradients before dividing by it.
    """

    lr: float
    batch_size: int
    warmup_fraction: float = 0.1
    checkpoint_minutes: float = 5.0
    log_every: int = 50
    mixed_precision: bool = False
    schedule: str = "cosine"
    eval_every: int = 0
    plateau_factor: float = 0.1
    plateau_patience: int = 0
    patience: int = 2
    embedding_l2: float = 0.0
    divergence_logloss: float | None = None
    lr_min: float = LR_MIN  # where the cosine ends; a warm-up keeps learning to its last step with a floor
    lr_cuts: tuple[int, ...] = ()
    adagrad_eps: float = ADAGRAD_EPS

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")


def to_device(batch: tuple[np.ndarray, ...], device: torch.device) -> Batch:
    """The batch as tensors on ``device``; on the CPU, copies in torch's own (64-byte aligned) memory.

    Numpy guarantees small arrays only 16-byte alignment, and where each one lands depends on what
    the process allocated before, so a resumed run hands the same rows to the first layer at other
    addresses than an uninterrupted one. MKL's matrix kernels may take another code path, and
    round differently, for inputs at another alignment; the copy (a few kilobytes per batch) keeps
    that out of the numbers.
    """
    if device.type == "cpu":
        return tuple(torch.from_numpy(a).clone() for a in batch)  # type: ignore[return-value]
    return tuple(torch.from_numpy(a).to(device, non_blocking=True) for a in batch)  # type: ignore[return-value]


def make_optimizer(model: nn.Module, lr: float, eps: float = ADAGRAD_EPS) -> torch.optim.Optimizer:
    """Adagrad over every trainable parameter (dense and sparse gradients alike); ``eps`` defaults to
    the original's 1e-2."""
    torch.sparse.check_sparse_tensor_invariants.disable()  # Adagrad builds sparse updates; skip the debug checks
    return torch.optim.Adagrad([p for p in model.parameters() if p.requires_grad], lr=lr, eps=eps)


def make_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, lr_min: float = LR_MIN
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up from 1e-8 to the peak over ``warmup_steps``, then cosine down to ``lr_min`` at ``total_steps``."""
    peak = optimizer.param_groups[0]["lr"]
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, total_steps - warmup_steps), eta_min=lr_min
    )
    if warmup_steps <= 0:
        return cosine
    linear = torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=LR_MIN / peak, end_factor=1.0, total_iters=warmup_steps
    )
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [linear, cosine], milestones=[warmup_steps])


def clip_grad_norm(parameters: Iterable[nn.Parameter], max_norm: float = CLIP_NORM) -> float:
    """Global L2 clipping that also handles sparse (embedding) gradients, which torch's own does not."""
    grads = []
    for p in parameters:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()  # duplicate ids in a batch must be summed before taking the norm
        grads.append(p.grad)
    if not grads:
        return 0.0
    total = torch.nn.utils.get_total_norm([g._values() if g.is_sparse else g for g in grads], foreach=False)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef)
    return float(total)


def logloss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, labels)


@dataclass
class Checkpointer:
    """Atomic periodic checkpoints: a crash mid-write never replaces the last good file."""

    path: Path
    every_s: float

    def __post_init__(self) -> None:
        self.last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every_s

    def save(self, state: dict) -> None:
        with atomic_path(self.path, ".pt") as tmp:
            torch.save(state, tmp)
        self.last = time.monotonic()

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        return torch.load(self.path, map_location="cpu", weights_only=True)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked for; a no-op on CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class LoopState:
    """What a resumed loop needs besides the model, the optimizer and the best weights.

    ``log``: the training loss every ``log_every`` steps; ``curve``: one entry per call of
    ``validate`` (its step, epoch fraction, learning rate and what it returned); ``best``: the curve
    entry with the lowest validation log loss so far (plateau schedule); ``bad_evals``: evaluations
    since it; ``stop_reason``: why the loop ended.
    """

    step: int
    rows: int
    seconds: float
    log: list[dict]
    curve: list[dict] = field(default_factory=list)
    best: dict | None = None
    bad_evals: int = 0
    stop_reason: str | None = None


class TrainingDiverged(SigeoError):
    """The training loss became NaN or infinite, or the validation log loss left the plausible range.

    ``step`` and ``reason`` say where and why; ``state`` is the loop's state at that point (its logs
    and validation curve), so a caller can report the run instead of failing.
    """

    def __init__(self, message: str, step: int, reason: str, state: LoopState) -> None:
        super().__init__(message)
        self.step, self.reason, self.state = step, reason, state


class TouchedRows:
    """Records the ids every ``nn.Embedding`` of a model looks up, for the L2 on the rows a batch touches."""

    def __init__(self, model: nn.Module) -> None:
        self.seen: list[tuple[nn.Embedding, torch.Tensor]] = []
        self.handles = [
            m.register_forward_hook(lambda module, args, _: self.seen.append((module, args[0])))
            for m in model.modules()
            if isinstance(m, nn.Embedding)
        ]

    def squared_norm(self) -> torch.Tensor:
        """Σ‖row‖² over the distinct rows looked up since the last call, with sparse gradients as the lookup's."""
        total = sum(
            F.embedding(ids.unique(), module.weight, sparse=module.sparse).square().sum() for module, ids in self.seen
        )
        self.seen.clear()
        return torch.as_tensor(total)

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def train_loop(
    model: nn.Module,
    forward: Callable[[Batch, int], torch.Tensor],
    batches: Callable[[int], Iterator[Batch]],
    total_steps: int,
    settings: TrainSettings,
    device: torch.device,
    checkpointer: Checkpointer,
    extra_state: Callable[[], dict] | None = None,
    restore_extra: Callable[[dict], None] | None = None,
    validate: Callable[[int], dict[str, float]] | None = None,
    steps_per_epoch: int | None = None,
    after_step: Callable[[int], None] | None = None,
) -> LoopState:
    """Train for up to ``total_steps`` batches, resuming from ``checkpointer`` if it holds a checkpoint.

    ``forward(batch, step)`` returns logits; ``batches(first_step)`` yields batches from that step on
    (so a resumed run sees exactly the batches it would have seen). ``extra_state`` / ``restore_extra``
    carry anything else the caller draws per step (the supernet's path sampler). ``after_step(step)``
    runs after each step, before any checkpoint (the warm-up's periodic validation, whose records
    then travel in ``extra_state``).

    ``validate(step)`` (optional) is called in eval mode under ``no_grad`` every
    ``settings.eval_every`` steps and after the last step; it returns metrics, with ``"logloss"``
    required by the plateau schedule and by ``divergence_logloss``. Under the cosine schedule its
    results are only recorded in ``LoopState.curve`` (no early stopping, last weights kept).
    ``steps_per_epoch`` labels the curve with epochs and sets the plateau schedule's warm-up.
    Raises :class:`TrainingDiverged` on a non-finite training loss or a diverged validation log loss.
    """
    optimizer = make_optimizer(model, settings.lr, settings.adagrad_eps)
    plateau = settings.schedule == "plateau"
    if plateau:
        if validate is None:
            raise ValueError("the plateau schedule needs a validate callable")
        warmup_steps = int((steps_per_epoch or 0) * settings.warmup_fraction)
        warmup = (
            torch.optim.lr_scheduler.LinearLR(optimizer, LR_MIN / settings.lr, 1.0, warmup_steps)
            if warmup_steps > 0
            else None
        )
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=settings.plateau_factor, patience=settings.plateau_patience, threshold=0.0
        )
    elif settings.schedule == "stepped":
        factor = functools.partial(
            stepped_factor,
            warmup_steps=int((steps_per_epoch or 0) * settings.warmup_fraction),
            start=LR_MIN / settings.lr,
            cuts=settings.lr_cuts,
            cut=settings.plateau_factor,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        warmup, warmup_steps = None, 0
    else:
        scheduler = make_scheduler(optimizer, total_steps, int(total_steps * settings.warmup_fraction), settings.lr_min)
        warmup, warmup_steps = None, 0
    state = LoopState(step=0, rows=0, seconds=0.0, log=[])
    best_weights: dict[str, torch.Tensor] | None = None
    saved = checkpointer.load()
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        if warmup is not None:
            warmup.load_state_dict(saved["warmup"])
        state = LoopState(**saved["loop"])
        best_weights = saved.get("best_model")
        if restore_extra is not None:
            restore_extra(saved["extra"])
        log.info("resumed from %s at step %d of %d", checkpointer.path, state.step, total_steps)

    def snapshot() -> dict:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "warmup": warmup.state_dict() if warmup is not None else None,
            "loop": vars(state).copy(),
            "extra": extra_state() if extra_state is not None else {},
            "best_model": best_weights,
        }

    def diverged(reason: str) -> TrainingDiverged:
        return TrainingDiverged(
            f"{reason} at step {state.step} (lr {optimizer.param_groups[0]['lr']:.3g}); "
            f"the last good checkpoint is kept at {checkpointer.path}",
            state.step,
            reason,
            state,
        )

    def run_validation() -> bool:
        """Evaluate, record, update the plateau state; whether training should stop."""
        nonlocal best_weights
        model.eval()
        with torch.no_grad():
            result = validate(state.step)
        model.train()
        epoch = round(state.step / steps_per_epoch, 4) if steps_per_epoch else None
        entry = {"step": state.step, "epoch": epoch, "lr": optimizer.param_groups[0]["lr"], **result}
        state.curve.append(entry)
        log.info("step %d validation %s", state.step, {k: round(v, 5) for k, v in result.items()})
        limit = settings.divergence_logloss
        if limit is not None and not result["logloss"] <= limit:
            raise diverged(f"validation log loss {result['logloss']:.4g} is above the limit {limit:.4g}")
        if not plateau:
            return False
        if state.best is None or result["logloss"] < state.best["logloss"]:
            state.best, state.bad_evals = entry, 0
            best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            state.bad_evals += 1
        scheduler.step(result["logloss"])
        entry["lr_after"] = optimizer.param_groups[0]["lr"]
        return state.bad_evals >= settings.patience

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    touched = TouchedRows(model) if settings.embedding_l2 > 0 else None
    started = time.monotonic() - state.seconds
    try:
        for batch in batches(state.step):
            if state.step >= total_steps:
                break
            lr = optimizer.param_groups[0]["lr"]
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, settings.mixed_precision):
                loss = logloss(forward(batch, state.step).float(), batch[2])
            if not torch.isfinite(loss):
                raise diverged(f"training loss is {loss.item()}")
            objective = loss if touched is None else loss + settings.embedding_l2 * touched.squared_norm()
            objective.backward()
            clip_grad_norm(params)
            optimizer.step()
            if not plateau:
                scheduler.step()
            elif warmup is not None and state.step <= warmup_steps:
                warmup.step()
            state.step += 1
            state.rows += batch[2].shape[0]
            state.seconds = time.monotonic() - started
            if state.step % settings.log_every == 0 or state.step == total_steps:
                state.log.append(
                    {
                        "step": state.step,
                        "rows": state.rows,
                        "loss": loss.item(),
                        "lr": lr,
                        "seconds": round(state.seconds, 3),
                    }
                )
                log.info("step %d/%d loss %.5f lr %.3g", state.step, total_steps, loss.item(), lr)
            due = settings.eval_every and state.step % settings.eval_every == 0
            if validate is not None and (due or state.step == total_steps) and run_validation():
                state.stop_reason = "patience"
                break
            if after_step is not None:
                after_step(state.step)
            state.seconds = time.monotonic() - started
            if checkpointer.due() and state.step < total_steps and all_finite(params):
                checkpointer.save(snapshot())
    finally:
        if touched is not None:
            touched.close()
    if state.stop_reason is None:
        state.stop_reason = "max_epochs" if plateau else "schedule_end"
    if best_weights is not None:
        model.load_state_dict(best_weights)
    return state


def stepped_factor(step: int, warmup_steps: int, start: float, cuts: tuple[int, ...], cut: float) -> float:
    """The ``stepped`` schedule's multiple of the peak rate at ``step``: the plateau schedule's linear
    warm-up from ``start`` over ``warmup_steps``, times ``cut`` for every step of ``cuts`` reached."""
    warm = start + (1.0 - start) * min(step, warmup_steps) / warmup_steps if warmup_steps > 0 else 1.0
    return warm * cut ** sum(1 for at in cuts if step >= at)


@torch.no_grad()
def all_finite(params: list[torch.Tensor]) -> bool:
    """Whether every weight is finite: a step can blow weights up before the loss shows it, and such
    weights must never replace the last good checkpoint."""
    return all(bool(torch.isfinite(p).all()) for p in params)


@torch.no_grad()
def evaluate(
    forward: Callable[[Batch], torch.Tensor],
    split: Split,
    batch_size: int,
    device: torch.device,
    max_rows: int | None = None,
) -> dict[str, float]:
    """Log loss (mean BCE), ROC-AUC and accuracy over a split (or its first ``max_rows`` rows)."""
    data = split.head(max_rows) if max_rows else split
    logits, labels = [], []
    for raw in data.batches(batch_size):
        batch = to_device(raw, device)
        logits.append(forward(batch).float().cpu())
        labels.append(batch[2].cpu())
    z, y = torch.cat(logits), torch.cat(labels)
    prob = torch.sigmoid(z.double()).numpy()
    y_np = y.numpy()
    both = len(np.unique(y_np)) == 2
    return {
        "logloss": float(logloss(z.double(), y.double())),
        "auc": float(roc_auc_score(y_np, prob)) if both else math.nan,
        "accuracy": float(accuracy_score(y_np, prob > 0.5)),
        "rows": len(y_np),
    }


def flops_per_sample(model: nn.Module, batch: Batch, forward: Callable[[Batch], torch.Tensor]) -> float:
    """Forward FLOPs per sample counted by ``torch.utils.flop_counter`` (one multiply-add = 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward(batch)
    return counter.get_total_flops() / batch[0].shape[0]


def param_count(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Embedding))
    return {"params": total, "params_dense": total - embedding}


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)"


def base_rate_logloss(positive_rate: float) -> float:
    """The log loss of always predicting the positive rate: what a model that learned nothing scores.

    Every claim that a model, a warm-up or a ground truth *learned* is measured against it.
    """
    p = float(positive_rate)
    if not 0.0 < p < 1.0:
        raise ValueError(f"positive rate must lie strictly between 0 and 1, got {p}")
    return -(p * math.log(p) + (1.0 - p) * math.log(1.0 - p))
