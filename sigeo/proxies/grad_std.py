"""Gradient spread Σ_p Σ_{i: σ_i>0} σ_i: the denominator of ZiCo, one of the theory study's statistics."""

from __future__ import annotations

from .gradients import ProbeContext
from .registry import register


@register("grad_std", higher_is_better=True)
def grad_std(ctx: ProbeContext) -> dict[str, float]:
    moments = ctx.moments()
    return {"grad_std": float(moments.sigma.sum())}
