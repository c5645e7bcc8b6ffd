"""The one gradient-collection pass that every gradient-based proxy shares.

SiGeo, ZiCo, Fisher–Rao, the training loss and the gradient statistics all read the same
per-parameter gradients of a few probe batches, so a candidate is back-propagated once per batch,
not once per proxy. The record owns its gradients: autograd's fresh tensors taken from the
parameters, or copies, never tensors the model still holds (docs/reference.md §5.3.3: the reference kept
views, which PyTorch overwrote in place), keyed by parameter name (docs/reference.md §5.3.2: it keyed by the printed
module, merging unrelated layers). They keep their own dtype, which is exact; every statistic over
them is computed in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from ..devices import is_device_failure
from ..space.supernet import Region

_BLOCK = 1 << 14  # columns per thread of a block of the moment pass on CPU: its float64 copies stay in L2

LossFn = Callable[[nn.Module, Any], torch.Tensor]


@dataclass(frozen=True)
class ProbeSettings:
    """Proxy settings from the config's ``proxy`` section and the run's seed (built by
    :func:`sigeo.config.load_settings`)."""

    zico_coef: float
    fr_coef: float
    loss_coef: float
    sigeo_mode: str
    seed: int


@dataclass(frozen=True)
class GradientRecord:
    """Gradients of the measured parameters over E probe batches, each parameter's flattened.

    ``batch_grads[b][p]`` is parameter p's gradient after batch b (the tensor autograd made, taken
    from the parameter, or a copy; never one the model still holds), in its own dtype;
    ``thetas[p]`` holds its values after the pass. ``flat`` and ``theta_flat`` lay them out as one
    [E, N] matrix and one [N] vector, parameters in ``names`` order with ``sizes`` elements each, for
    the proxies that want them; the moments read the parts and need no such copy.
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    batch_grads: tuple[tuple[torch.Tensor, ...], ...]
    thetas: tuple[torch.Tensor, ...]
    losses: list[float]

    @cached_property
    def flat(self) -> torch.Tensor:
        """[E, N]: row b holds every measured parameter's gradient after batch b."""
        return torch.stack([torch.cat(row) for row in self.batch_grads])

    @cached_property
    def theta_flat(self) -> torch.Tensor:
        """[N] parameter values after the pass."""
        return torch.cat(self.thetas)

    @property
    def grads(self) -> dict[str, torch.Tensor]:
        """Parameter name -> [E, n] gradients."""
        return {name: torch.stack([row[p] for row in self.batch_grads]) for p, name in enumerate(self.names)}

    @property
    def theta(self) -> dict[str, torch.Tensor]:
        """Parameter name -> [n] values after the pass."""
        return dict(zip(self.names, self.thetas, strict=True))

    @property
    def num_batches(self) -> int:
        return len(self.batch_grads)

    @cached_property
    def moments(self) -> GradientMoments:
        """Per-parameter gradient statistics, computed once for every proxy that reads them."""
        return GradientMoments.of(self)


@dataclass(frozen=True)
class GradientMoments:
    """Per-parameter sums of per-element gradient statistics over the probe batches, in float64.

    For element i over the E batches: μ_i = mean |g_i|, σ_i = unbiased std (ddof 1, NaN for a
    single batch). Per parameter, in the record's order: ``snr`` = Σ μ_i/σ_i and ``mu`` = Σ μ_i over
    the elements with σ_i ≠ 0, ``sigma`` = Σ σ_i, ``varying`` = #{i: σ_i ≠ 0}, ``first_snr`` = μ_i/σ_i
    of the first element with σ_i ≠ 0 (0 when there is none), and ``inner`` = Σ θ_i Σ_b g_i. A NaN σ
    counts as varying, so NaN propagates into every sum.
    """

    snr: torch.Tensor
    mu: torch.Tensor
    sigma: torch.Tensor
    varying: torch.Tensor
    first_snr: torch.Tensor
    inner: torch.Tensor

    @classmethod
    def of(cls, record: GradientRecord) -> GradientMoments:
        """One pass over each parameter's gradients in column blocks that stay in cache, reduced to
        per-parameter sums in the block: no per-element vector is ever written out (an [N] float64
        vector per statistic and the [E, N] matrix cost more memory traffic than the maths).

        Rows are added one by one (a reduction over the short batch axis, as ``torch.std`` does it,
        is ~20× slower on CPU). σ comes from the differences to the first batch, d_b = g_b − g_0:
        (E−1)σ² = Σd² − (Σd)²/E. Differences of float32 gradients are exact in float64, so σ keeps
        full precision where an element's values are a few ulps apart (``torch.std``'s Welford update
        was off by 5e-10 there). Masks are float rows (1 where σ = 0) applied by arithmetic, which is
        exact here and cheaper than boolean masks.
        """
        e, count = record.num_batches, len(record.sizes)
        device = record.thetas[0].device if count else torch.device("cpu")
        largest = max(record.sizes, default=0)
        # on CPU every intra-op thread gets a cache-sized share of a block; a GPU wants few, large kernels
        block = _BLOCK * torch.get_num_threads() if device.type == "cpu" else max(largest, 1)
        buffers = _MomentBuffers(e, max(min(block, largest), 1), device)
        per_dof = 1.0 / (e - 1) if e > 1 else math.nan  # σ of a single batch is NaN
        sums = torch.zeros(count, 5, dtype=torch.float64, device=device)
        first_snr = torch.zeros(count, dtype=torch.float64, device=device)
        for p, n in enumerate(record.sizes):
            found = False
            for lo in range(0, n, block):
                k = min(block, n - lo)
                v = buffers.views(k)
                for row, grads in zip(v.rows, record.batch_grads, strict=True):
                    row.copy_(grads[p][lo : lo + k])
                torch.abs(v.values, out=v.magnitudes)
                v.mu.copy_(v.magnitude_rows[0])  # E·μ until the per-parameter sums are divided by E
                for row in v.magnitude_rows[1:]:
                    v.mu.add_(row)
                v.later.sub_(v.first)
                v.shift_sum.zero_()
                v.sigma.zero_()
                for d in v.shifts:
                    v.shift_sum.add_(d)
                    v.sigma.addcmul_(d, d)
                v.sigma.addcmul_(v.shift_sum, v.shift_sum, value=-1.0 / e).clamp_(min=0).mul_(per_dof).sqrt_()
                v.inner.copy_(record.thetas[p][lo : lo + k]).mul_(v.shift_sum.add_(v.first, alpha=e))
                torch.eq(v.sigma, 0, out=v.constant)  # NaN σ is not 0: NaN propagates
                v.mu.mul_(torch.sub(1.0, v.constant, out=v.snr))  # × 0 where σ = 0 (μ is finite there), × 1 else
                torch.div(v.mu, torch.add(v.sigma, v.constant, out=v.snr), out=v.snr)  # 0 / 1 where σ = 0
                sums[p].add_(v.stats.sum(1))
                if not found:
                    i = int(torch.argmin(v.constant))
                    found = bool(v.constant[i] == 0)
                    if found:
                        first_snr[p] = v.snr[i] / e
        sums[:, :2].div_(e)
        snr, mu, sigma, inner, constants = sums.unbind(1)
        varying = torch.tensor(record.sizes, dtype=torch.float64, device=device) - constants
        return cls(snr, mu, sigma, varying, first_snr, inner)


class _MomentBuffers:
    """The moment pass's float64 work space, with its views for blocks of k columns made once per k
    (building a dozen views costs more than a block's maths when most blocks have the same width)."""

    def __init__(self, batches: int, width: int, device: torch.device) -> None:
        f64 = {"dtype": torch.float64, "device": device}
        self.values, self.magnitudes = torch.empty(batches, width, **f64), torch.empty(batches, width, **f64)
        self.stats = torch.empty(5, width, **f64)  # per element: μ/σ, μ, σ, θ·Σ_b g, 1 where σ = 0
        self.shift_sum = torch.empty(width, **f64)
        self._views: dict[int, SimpleNamespace] = {}

    def views(self, k: int) -> SimpleNamespace:
        if k not in self._views:
            values, stats = self.values[:, :k], self.stats[:, :k]
            snr, mu, sigma, inner, constant = stats
            self._views[k] = SimpleNamespace(
                values=values, rows=tuple(values), first=values[0], later=values[1:], shifts=tuple(values[1:]),
                magnitudes=self.magnitudes[:, :k], magnitude_rows=tuple(self.magnitudes[:, :k]),
                stats=stats, snr=snr, mu=mu, sigma=sigma, inner=inner, constant=constant,
                shift_sum=self.shift_sum[:k],
            )  # fmt: skip
        return self._views[k]


def collect_gradients(
    model: nn.Module,
    batches: Sequence[Any],
    loss_fn: LossFn,
    params: Mapping[str, nn.Parameter | Region],
    step: Callable[[], object] | None = None,
    accumulate: bool = False,
) -> GradientRecord:
    """Back-propagate each batch and record the measured parameters' gradients (see ProbeContext).

    Each batch's gradients are taken as they are: gradients are reset to None before every batch,
    so autograd makes fresh tensors, and the record takes them from the parameters (a copy where the
    gradients accumulate, or of a part of one). Only parameters that received a gradient are kept;
    a batch that left one without gets zeros.
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
            taken.append([_take_gradient(region, accumulate) for region in regions])
    keep = [i for i in range(len(regions)) if any(row[i] is not None for row in taken)]
    missing = {i: regions[i].param.new_zeros(regions[i].numel) for i in keep if any(row[i] is None for row in taken)}
    batch_grads = tuple(tuple(missing[i] if row[i] is None else row[i] for i in keep) for row in taken)
    thetas = tuple(_unshared(regions[i].select(regions[i].param.detach()), regions[i].param) for i in keep)
    names = tuple(params)
    return GradientRecord(
        names=tuple(names[i] for i in keep),
        sizes=tuple(regions[i].numel for i in keep),
        batch_grads=batch_grads,
        thetas=thetas,
        losses=losses,
    )


def _take_gradient(region: Region, accumulate: bool) -> torch.Tensor | None:
    """The region's elements of its parameter's gradient, flattened, in a tensor the model no longer holds."""
    grad = region.param.grad
    if grad is None:
        return None
    part = region.select(grad)
    if accumulate or region.numel != region.param.numel():  # it keeps accumulating, or a part would pin it whole
        return _unshared(part, grad)
    region.param.grad = None
    return part


def _unshared(part: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``part``, selected from ``source``, as a tensor that shares no memory with it (a copy if it is a view)."""
    if not source.is_sparse and part.untyped_storage().data_ptr() == source.untyped_storage().data_ptr():
        return part.clone()
    return part


class ProbeContext:
    """What a proxy may look at for one candidate: the model, its probe batches, and shared results.

    ``loss_fn(model, batch)`` returns the mean loss of a batch; ``params`` (default: every parameter
    with ``requires_grad``) are the ones measured. ``step``, if given, runs after each backward and
    before the gradients are recorded — faithful SiGeo passes gradient clipping plus an optimizer step,
    so the record holds post-clipping gradients and θ after the last step (docs/reference.md §5.1).
    ``accumulate=True`` leaves gradients un-zeroed between and before batches, so each recorded row is
    the running sum (the theory study's faithful mode reproduces the reference's twin network this way).
    ``extras`` carries stage-specific inputs for proxies that need more than gradients.
    ``failures`` maps each proxy that failed on this candidate to its error (filled by the registry).
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
        self.failures: dict[str, str] = {}
        self._record: GradientRecord | None = None
        self._error: Exception | None = None

    def gradients(self) -> GradientRecord:
        """The gradient record, collected on first use and then shared (a failure is shared too, except
        an out-of-memory or CUDA error, which stops the job rather than scoring the candidate)."""
        if self._error is not None:
            raise self._error
        if self._record is None:
            try:
                self._record = collect_gradients(
                    self.model, self.batches, self.loss_fn, self.params, self.step, self.accumulate
                )
            except (FloatingPointError, RuntimeError) as exc:
                if not is_device_failure(exc):
                    self._error = exc
                raise
        return self._record

    def restricted(self, names: Sequence[str]) -> ProbeContext:
        """This context measuring only the parameters ``names``, read from its own gradient record
        (no second pass: with ``accumulate`` a second pass would add to the gradients again)."""
        record = self.gradients()
        keep = [record.names.index(name) for name in names if name in record.names]
        narrow = ProbeContext(
            self.model, self.batches, self.loss_fn, self.settings, {n: self.params[n] for n in names}, self.step,
            self.extras, accumulate=self.accumulate,
        )  # fmt: skip
        narrow._record = GradientRecord(
            tuple(record.names[i] for i in keep),
            tuple(record.sizes[i] for i in keep),
            tuple(tuple(row[i] for i in keep) for row in record.batch_grads),
            tuple(record.thetas[i] for i in keep),
            record.losses,
        )
        return narrow

    def moments(self) -> GradientMoments:
        """Per-parameter gradient statistics over the probe batches (shared through the record)."""
        record = self.gradients()
        if record.num_batches < 2:
            raise ValueError(f"gradient statistics need at least 2 probe batches, got {record.num_batches}")
        return record.moments
