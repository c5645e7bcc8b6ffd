"""Empirical Fisher information trace, Σ_i mean_b g_{b,i}², over the parameters the candidate uses.

zero-cost-nas's ``fisher`` sums (activation × its gradient)² per channel, which needs activation
hooks per operator; the parameter-space trace is the same Fisher idea computed from the shared
gradient pass, so it costs nothing extra.
"""

from __future__ import annotations

from .gradients import ProbeContext
from .registry import register


@register("fisher", higher_is_better=True)
def fisher(ctx: ProbeContext) -> dict[str, float]:
    return {"fisher": float(ctx.gradients().flat.double().square().mean(0).sum())}
