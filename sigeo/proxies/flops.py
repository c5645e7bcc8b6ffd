"""FLOPs: the candidate's forward FLOPs per sample as a standalone network (bigger is taken as better)."""

from __future__ import annotations

from .gradients import ProbeContext
from .registry import register


@register("flops", higher_is_better=True)
def flops(ctx: ProbeContext) -> dict[str, float]:
    return {"flops": float(ctx.extras["flops"])}
