"""SynFlow (Tanaka et al., 2020): Σ θ ⊙ ∂R/∂θ with R the summed output of the network with |θ| and unit inputs.

Data-free: the dense input is all ones and every categorical id is 1 (:func:`unit_inputs`); the
parameters are replaced by their absolute values through ``torch.func.functional_call`` (the
model's own parameters are never modified). Needs a model called as ``model(dense, ids)``; the
score is taken over the measured parameters (``ctx.params``).
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from .gradients import ProbeContext, Region
from .registry import register


def unit_inputs(dense: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SynFlow's input for a batch shaped like ``(dense, ids)``: all ones."""
    return torch.ones_like(dense), torch.ones_like(ids)


@register("synflow", higher_is_better=True)
def synflow(ctx: ProbeContext) -> dict[str, float]:
    names = dict(ctx.model.named_parameters())
    by_param = {id(p): name for name, p in names.items()}
    absolute = {name: p.detach().abs().requires_grad_() for name, p in names.items()}
    out = functional_call(ctx.model, absolute, unit_inputs(ctx.batches[0][0], ctx.batches[0][1]))
    out.double().sum().backward()
    total = 0.0
    for measured in ctx.params.values():
        region = measured if isinstance(measured, Region) else Region(measured)
        name = by_param[id(region.param)]
        grad = absolute[name].grad
        if grad is not None:
            total += float((region.select(absolute[name].detach()) * region.select(grad)).sum())
    return {"synflow": total}
