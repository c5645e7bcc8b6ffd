"""One-shot scoring (docs/reference.md §4.1): fine-tune the head inside the supernet, then score val log loss.

The fine-tuning and evaluation themselves need the supernet and the data, so the caller provides
them as ``extras["oneshot"]``, a function returning the validation log loss (lower is better).
"""

from __future__ import annotations

from .gradients import ProbeContext
from .registry import register


@register("oneshot", higher_is_better=False)
def oneshot(ctx: ProbeContext) -> dict[str, float]:
    return {"oneshot": float(ctx.extras["oneshot"]())}
