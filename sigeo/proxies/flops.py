"""FLOPs: the candidate's forward FLOPs per sample as a standalone network (bigger is taken as better).

Counted as torch's flop counter counts the built network (2 per multiply-add, every block), the
record's ``flops_2x_all_blocks``.
"""

from __future__ import annotations

from .gradients import ProbeContext
from .registry import register


@register("flops", higher_is_better=True)
def flops(ctx: ProbeContext) -> dict[str, float]:
    return {"flops": float(ctx.extras["flops_2x_all_blocks"])}
