"""SNIP (Lee et al., 2019, as in zero-cost-nas): Σ |θ ⊙ g|, with g the mean gradient of the probe batches."""

from __future__ import annotations

from .gradients import ProbeContext
from .registry import register


@register("snip", higher_is_better=True)
def snip(ctx: ProbeContext) -> dict[str, float]:
    record = ctx.gradients()
    return {"snip": float((record.theta_flat.double() * record.flat.double().mean(0)).abs().sum())}
