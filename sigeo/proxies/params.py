"""#params: the candidate's dense parameter count as a standalone network (bigger is taken as better)."""

from __future__ import annotations

from .gradients import ProbeContext
from .registry import register


@register("params", higher_is_better=True)
def params(ctx: ProbeContext) -> dict[str, float]:
    return {"params": float(ctx.extras["params"])}
