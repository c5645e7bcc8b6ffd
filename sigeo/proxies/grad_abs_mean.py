"""Mean absolute gradient Σ_p Σ_{i: σ_i>0} μ_i: the numerator of ZiCo, one of the theory study's statistics."""

from __future__ import annotations

from .gradients import ProbeContext
from .registry import register


@register("grad_abs_mean", higher_is_better=True)
def grad_abs_mean(ctx: ProbeContext) -> dict[str, float]:
    moments = ctx.moments()
    return {"grad_abs_mean": float(moments.mu.sum())}
