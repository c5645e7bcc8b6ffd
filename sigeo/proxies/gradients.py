"""The one gradient-collection pass that every gradient-based proxy shares.

SiGeo, ZiCo, Fisher–Rao, the training loss and the gradient statistics all read the same
per-parameter gradients of a few probe batches, so a candidate is back-propagated once per batch,
not once per proxy. Gradients are cloned into one matrix (REFERENCE §5.3.3: the reference kept
views, which PyTorch overwrote in place) and keyed by parameter name (§5.3.2: it keyed by the
printed module, merging unrelated layers). The matrix keeps the gradients' own dtype, which is
exact; every statistic over it is computed in float64.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..space.supernet import Region

SIGEO_MODES = ("fixed", "faithful")
_BLOCK = 1 << 14  # columns per thread of a block of the moment pass on CPU: its float64 copies stay in L2

LossFn = Callable[[nn.Module, Any], torch.Tensor]


@dataclass(frozen=True)
class ProbeSettings:
    """Proxy settings from the config's ``proxy`` section (defaults live in the schema) and the run's seed."""

    zico_coef: float
    fr_coef: float
    loss_coef: float
    sigeo_mode: str
    seed: int

    def __post_init__(self) -> None:
        if self.sigeo_mode not in SIGEO_MODES:
            raise ConfigError(f"proxy.sigeo_mode must be one of {', '.join(SIGEO_MODES)}, got {self.sigeo_mode!r}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ProbeSettings:
        """Read a validated config: every field from ``proxy`` except the seed, which is the run's ``seed``."""
        section = config["proxy"]
        return cls(**{f.name: section[f.name] for f in fields(cls) if f.name != "seed"}, seed=config["seed"])


@dataclass(frozen=True)
class GradientRecord:
    """Gradients of the measured parameters over E probe batches, stored as one matrix of their dtype.

    ``flat`` is [E, N]: row b holds every measured parameter's flattened gradient after batch b,
    parameters in ``names`` order with ``sizes`` elements each; ``theta_flat`` [N] holds the
    parameter values after the pass. ``grads`` and ``theta`` are per-parameter views of them.
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    flat: torch.Tensor
    theta_flat: torch.Tensor
    losses: list[float]

    @property
    def grads(self) -> dict[str, torch.Tensor]:
        """Parameter name -> [E, n] gradients."""
        return dict(zip(self.names, self.flat.split(self.sizes, dim=1), strict=True))

    @property
    def theta(self) -> dict[str, torch.Tensor]:
        """Parameter name -> [n] values after the pass."""
        return dict(zip(self.names, self.theta_flat.split(self.sizes), strict=True))

    @property
    def num_batches(self) -> int:
        return self.flat.shape[0]

    @cached_property
    def moments(self) -> GradientMoments:
        """Per-element statistics over the batches, computed once for every proxy that reads them."""
        return GradientMoments.of(self)

    @property
    def batch_sum(self) -> torch.Tensor:
        """[N] Σ_b G_b in float64."""
        return self.moments.batch_sum


@dataclass(frozen=True)
class GradientMoments:
    """Per-element Σ_b g (``batch_sum``), mean |g| (``mu``) and unbiased std (``sigma``, ddof 1, NaN
    for a single batch) over the probe batches, in float64.

    ``sizes`` are the parameters' element counts (``names`` order), for per-parameter sums.
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    batch_sum: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor

    @classmethod
    def of(cls, record: GradientRecord) -> GradientMoments:
        """One pass over the record in column blocks that stay in cache, adding rows one by one (a
        reduction over the short batch axis, as ``torch.std`` does it, is ~20× slower on CPU).

        σ comes from the differences to the first batch, d_b = g_b − g_0: (E−1)σ² = Σd² − (Σd)²/E.
        Differences of float32 gradients are exact in float64, so σ keeps full precision where a
        column's values are a few ulps apart (``torch.std``'s Welford update was off by 5e-10 there).
        """
        e, n = record.flat.shape
        f64 = {"dtype": torch.float64, "device": record.flat.device}
        batch_sum, mu, sigma = (torch.empty(n, **f64) for _ in range(3))
        # on CPU every intra-op thread gets a cache-sized share of a block; a GPU wants few, large kernels
        block = _BLOCK * torch.get_num_threads() if record.flat.device.type == "cpu" else max(n, 1)
        width = min(block, n)
        values, magnitudes = torch.empty(e, width, **f64), torch.empty(e, width, **f64)
        shift_sum = torch.empty(width, **f64)
        for lo in range(0, n, block):
            cols = slice(lo, lo + block)
            total, m, s = batch_sum[cols], mu[cols], sigma[cols]
            k = len(total)
            g, dsum = values[:, :k], shift_sum[:k]
            g.copy_(record.flat[:, cols])
            magnitude = torch.abs(g, out=magnitudes[:, :k])
            m.copy_(magnitude[0])
            for row in magnitude[1:]:
                m.add_(row)
            first, shifted = g[0], g[1:].sub_(g[0])
            dsum.zero_()
            s.zero_()
            for d in shifted:
                dsum.add_(d)
                s.addcmul_(d, d)
            torch.add(dsum, first, alpha=e, out=total)
            s.addcmul_(dsum, dsum, value=-1.0 / e).clamp_(min=0).div_(e - 1).sqrt_()
            m.div_(e)
        return cls(record.names, record.sizes, batch_sum, mu, sigma)

    @cached_property
    def varying(self) -> torch.Tensor:
        """Elements whose gradient varies over the batches (σ ≠ 0); NaN σ counts, so NaN propagates."""
        return self.sigma != 0

    def per_parameter_sum(self, values: torch.Tensor) -> torch.Tensor:
        """[N] element values -> [P] sums per parameter."""
        return torch.stack([part.sum() for part in values.split(self.sizes)])


def collect_gradients(
    model: nn.Module,
    batches: Sequence[Any],
    loss_fn: LossFn,
    params: Mapping[str, nn.Parameter | Region],
    step: Callable[[], object] | None = None,
    accumulate: bool = False,
) -> GradientRecord:
    """Back-propagate each batch and record the measured parameters' gradients (see ProbeContext).

    Each batch's gradients are kept as they are (fresh tensors, as gradients are reset to None before
    every batch; copies when they accumulate) and copied into the record's matrix once at the end,
    which then holds only the parameters that received a gradient.
    """
    if not params:
        raise ValueError("no parameters to measure")
    if not batches:
        raise ValueError("no probe batches")
    regions = [p if isinstance(p, Region) else Region(p) for p in params.values()]
    taken: list[list[torch.Tensor | None]] = []
    losses = []
    with torch.enable_grad():
        for batch in batches:
            if not accumulate:
                model.zero_grad(set_to_none=True)
                for region in regions:
                    region.param.grad = None
            loss = loss_fn(model, batch)
            losses.append(float(loss.detach()))
            loss.backward()
            if step is not None:
                step()
            grads = [r.param.grad for r in regions]
            taken.append(
                [
                    None if g is None else r.select(g.clone() if accumulate else g)
                    for r, g in zip(regions, grads, strict=True)
                ]
            )
    keep = [i for i in range(len(regions)) if any(row[i] is not None for row in taken)]
    sizes = tuple(regions[i].numel for i in keep)
    device = regions[0].param.device
    dtype = functools.reduce(torch.promote_types, (r.param.dtype for r in regions))
    flat = torch.empty(len(batches), sum(sizes), dtype=dtype, device=device)
    for row, parts in zip(flat, taken, strict=True):
        for out, i in zip(row.split(sizes), keep, strict=True):
            if parts[i] is None:
                out.zero_()
            else:
                out.copy_(parts[i])
    theta = torch.empty(sum(sizes), dtype=dtype, device=device)
    for out, i in zip(theta.split(sizes), keep, strict=True):
        out.copy_(regions[i].select(regions[i].param.detach()))
    names = tuple(params)
    return GradientRecord(names=tuple(names[i] for i in keep), sizes=sizes, flat=flat, theta_flat=theta, losses=losses)


class ProbeContext:
    """What a proxy may look at for one candidate: the model, its probe batches, and shared results.

    ``loss_fn(model, batch)`` returns the mean loss of a batch; ``params`` (default: every parameter
    with ``requires_grad``) are the ones measured. ``step``, if given, runs after each backward and
    before the gradients are recorded — faithful SiGeo passes gradient clipping plus an optimizer step,
    so the record holds post-clipping gradients and θ after the last step (REFERENCE §5.1).
    ``accumulate=True`` leaves gradients un-zeroed between and before batches, so each recorded row is
    the running sum (the theory study's faithful mode reproduces the reference's twin network this way).
    ``extras`` carries stage-specific inputs for proxies that need more than gradients.
    """

    def __init__(
        self,
        model: nn.Module,
        batches: Sequence[Any],
        loss_fn: LossFn,
        settings: ProbeSettings,
        params: Mapping[str, nn.Parameter | Region] | None = None,
        step: Callable[[], object] | None = None,
        extras: Mapping[str, Any] | None = None,
        *,
        accumulate: bool = False,
    ) -> None:
        self.model = model
        self.batches = list(batches)
        self.loss_fn = loss_fn
        self.settings = settings
        self.params = (
            dict(params) if params is not None else {name: p for name, p in model.named_parameters() if p.requires_grad}
        )
        self.step = step
        self.extras = dict(extras or {})
        self.accumulate = accumulate
        self._record: GradientRecord | None = None
        self._error: Exception | None = None

    def gradients(self) -> GradientRecord:
        """The gradient record, collected on first use and then shared (a failure is shared too)."""
        if self._error is not None:
            raise self._error
        if self._record is None:
            try:
                self._record = collect_gradients(
                    self.model, self.batches, self.loss_fn, self.params, self.step, self.accumulate
                )
            except (FloatingPointError, RuntimeError) as exc:
                self._error = exc
                raise
        return self._record

    def moments(self) -> GradientMoments:
        """Mean |g| and std per element over the probe batches (shared through the record)."""
        record = self.gradients()
        if record.num_batches < 2:
            raise ValueError(f"gradient statistics need at least 2 probe batches, got {record.num_batches}")
        return record.moments
