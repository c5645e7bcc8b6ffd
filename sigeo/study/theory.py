"""The paper's theory experiment (Section 5.2; docs/reference.md §8): do early-training statistics rank MLPs?

Two-layer MLPs (input → h → classes, ReLU) of many widths and random inits are trained with SGD.
At each warm-up level p the probe takes ``probe_batches`` (4) consecutive batches starting at batch
⌊B·min(p, 0.99)⌋ of the first epoch (B batches per epoch; clamped so they fit) and scores a copy of the network with the
search's own proxy code (ProbeContext + registry); training continues unaffected. After training
the test loss is the ground truth, and the table reports raw Spearman/Kendall of every statistic
against it per level, as the paper's README does (``theory_report``).

All repeats of one width train together as one batched model (``bmm`` over a leading repeat axis):
the arithmetic of every run is that of an independent network with its own seeded init and
shuffling, only faster.

``mode: faithful`` reproduces the reference notebook's probe: each probe batch comes right after
the training step on that batch (a twin network gets the new weights), the twin's gradients are
never zeroed (they accumulate over all probe batches of all levels), only the weight matrices are
measured except by Fisher–Rao (θ·Σg over every parameter, biases included, as the notebook takes the
full gradient vector there), and the network ends in a ReLU before the softmax. Its other differences do not change
ranks (np.std ddof 0 scales every σ by one constant; log((θ·g)²) = 2·log|θ·g|), and its ignored
second width is gone here: each run has exactly one width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..proxies import ProbeContext, ProbeSettings, score
from .mnist import Digits

STATISTICS = ("loss", "fisher_rao", "grad_abs_mean", "grad_std", "zico", "sigeo")


@dataclass(frozen=True)
class TheorySettings:
    """The config's ``theory`` section (built by :func:`sigeo.config.load_settings`)."""

    mnist_dir: str | None
    widths: tuple[int, ...]
    repeats: int
    epochs: int
    batch_size: int
    lr: float
    levels: tuple[float, ...]
    probe_batches: int
    mode: str
    seed: int


def run_seed(seed: int, width: int, repeat: int) -> int:
    """Seed of one run's init and shuffling: independent of the other runs and of how many there are."""
    return int(np.random.SeedSequence([seed, width, repeat]).generate_state(1)[0])


#: The notebook's "100 %" level starts its probe at 99 % of the first epoch.
LAST_LEVEL_FRACTION = 0.99


def start_batch(level: float, batches_per_epoch: int, probe_batches: int) -> int:
    """First probe batch of a warm-up level: ⌊B·p⌋ with p at most 0.99 (the notebook's 100 % is
    ⌊469·0.99⌋ = 464), moved back so all probe batches lie in epoch 0."""
    return min(int(batches_per_epoch * min(level, LAST_LEVEL_FRACTION)), batches_per_epoch - probe_batches)


def _uniform(generator: torch.Generator, shape: tuple[int, ...], bound: float) -> torch.Tensor:
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound


def _init(generators: Sequence[torch.Generator], dims: tuple[int, int, int]) -> list[torch.Tensor]:
    """PyTorch's default Linear init, U(±1/√fan_in) for weights and biases, per run, stacked over runs."""
    d, h, c = dims
    per_run = [
        [
            _uniform(g, (h, d), d**-0.5),
            _uniform(g, (h, 1), d**-0.5),
            _uniform(g, (c, h), h**-0.5),
            _uniform(g, (c, 1), h**-0.5),
        ]
        for g in generators
    ]
    return [torch.stack(group).requires_grad_() for group in zip(*per_run, strict=True)]


def _logits(params: Sequence[torch.Tensor], x: torch.Tensor, output_relu: bool) -> torch.Tensor:
    """[R, n, D] inputs -> [R, C, n] logits (classes before samples: the fast layout for cross-entropy)."""
    w1, b1, w2, b2 = params
    hidden = torch.baddbmm(b1, w1, x.transpose(1, 2)).relu()
    out = torch.baddbmm(b2, w2, hidden)
    return out.relu() if output_relu else out


def _mlp(dims: tuple[int, int, int], output_relu: bool) -> nn.Sequential:
    """A probe network; uninitialised (``_load`` fills it), so building it draws nothing from torch's RNG."""
    d, h, c = dims
    layers = [nn.utils.skip_init(nn.Linear, d, h), nn.ReLU(), nn.utils.skip_init(nn.Linear, h, c)]
    return nn.Sequential(*layers, nn.ReLU()) if output_relu else nn.Sequential(*layers)


def _load(model: nn.Sequential, weights: Sequence[torch.Tensor]) -> None:
    """Copy one run's weights into a probe network (its gradients are left alone)."""
    w1, b1, w2, b2 = weights
    with torch.no_grad():
        model[0].weight.copy_(w1)
        model[0].bias.copy_(b1[:, 0])
        model[2].weight.copy_(w2)
        model[2].bias.copy_(b2[:, 0])


def _cross_entropy(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return F.cross_entropy(model(batch[0]), batch[1])


def _follow_training(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Faithful probe loss: load the weights training had after this batch's step, then score the batch."""
    _load(model, batch[2])
    return _cross_entropy(model, batch)


def run_width(digits: Digits, width: int, settings: TheorySettings, probe: ProbeSettings) -> pd.DataFrame:
    """Train ``settings.repeats`` MLPs of hidden width ``width``; one row per run × warm-up level.

    Columns: width, repeat, seed, level, start_batch, every statistic of :data:`STATISTICS`,
    test_loss (mean cross-entropy over the test set), test_accuracy and train_loss (mean batch loss of
    the last epoch).
    """
    faithful = settings.mode == "faithful"
    x, y = torch.from_numpy(digits.x), torch.from_numpy(digits.y)
    n, bs, r_count, e = len(x), settings.batch_size, settings.repeats, settings.probe_batches
    batches_per_epoch = -(-n // bs)
    if batches_per_epoch < e:
        raise ConfigError(f"theory.probe_batches ({e}) exceeds the {batches_per_epoch} batches of an epoch")
    dims = (x.shape[1], width, digits.num_classes)
    seeds = [run_seed(settings.seed, width, r) for r in range(r_count)]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    params = _init(generators, dims)
    twins = [_mlp(dims, faithful) for _ in range(r_count)]
    starts = {level: start_batch(level, batches_per_epoch, e) for level in settings.levels}
    scores: dict[tuple[int, float], dict[str, float]] = {}
    snapshots: dict[int, list[torch.Tensor]] = {}

    def measure(level: float, index: torch.Tensor) -> None:
        first = starts[level]
        for r, twin in enumerate(twins):
            rows = [index[r, b * bs : (b + 1) * bs] for b in range(first, first + e)]
            if faithful:
                batches = [(x[i], y[i], [s[r] for s in snapshots[first + k]]) for k, i in enumerate(rows)]
                every = ProbeContext(twin, batches, _follow_training, probe, accumulate=True)
                weights = every.restricted([name for name in every.params if name.endswith("weight")])
                by_weights = score([s for s in STATISTICS if s != "fisher_rao"], weights)
                scores[r, level] = {**by_weights, **score(["fisher_rao"], every)}
            else:
                _load(twin, [p[r] for p in params])
                ctx = ProbeContext(twin, [(x[i], y[i]) for i in rows], _cross_entropy, probe)
                scores[r, level] = score(STATISTICS, ctx)

    for epoch in range(settings.epochs):
        index = torch.stack([torch.randperm(n, generator=g) for g in generators])
        epoch_loss = torch.zeros(r_count)
        for b in range(batches_per_epoch):
            if epoch == 0 and not faithful:
                for level in (lv for lv, s in starts.items() if s == b):
                    measure(level, index)
            rows = index[:, b * bs : (b + 1) * bs]
            flat = rows.reshape(-1)
            xb = x.index_select(0, flat).view(*rows.shape, -1)
            yb = y.index_select(0, flat).view(rows.shape)
            losses = F.cross_entropy(_logits(params, xb, faithful), yb, reduction="none").mean(1)
            grads = torch.autograd.grad(losses.sum(), params)
            with torch.no_grad():  # plain SGD; torch.optim would import torch._dynamo (seconds per job)
                for p, g in zip(params, grads, strict=True):
                    p.sub_(g, alpha=settings.lr)
            epoch_loss += losses.detach()
            if epoch == 0 and faithful and any(s <= b < s + e for s in starts.values()):
                snapshots[b] = [p.detach().clone() for p in params]
                for level in (lv for lv, s in starts.items() if s + e - 1 == b):
                    measure(level, index)
        train_loss = epoch_loss / batches_per_epoch

    with torch.no_grad():
        x_test = torch.from_numpy(digits.x_test).expand(r_count, -1, -1)
        logits = _logits(params, x_test, faithful)
        y_test = torch.from_numpy(digits.y_test).expand(r_count, -1)
        test_loss = F.cross_entropy(logits, y_test, reduction="none").mean(1)
        test_accuracy = (logits.argmax(1) == y_test).double().mean(1)

    records = [
        {
            "width": width,
            "repeat": r,
            "seed": seeds[r],
            "level": level,
            "start_batch": starts[level],
            **{name: scores[r, level][name] for name in STATISTICS},
            "test_loss": float(test_loss[r]),
            "test_accuracy": float(test_accuracy[r]),
            "train_loss": float(train_loss[r]),
        }
        for r in range(r_count)
        for level in settings.levels
    ]
    return pd.DataFrame(records)
