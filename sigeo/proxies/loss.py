"""Current training loss: the loss of the last probe batch, before any step on it (lower is better)."""

from __future__ import annotations

from .gradients import GradientRecord, ProbeContext
from .registry import register


def loss_value(record: GradientRecord) -> float:
    return record.losses[-1]


@register("loss", higher_is_better=False)
def loss(ctx: ProbeContext) -> dict[str, float]:
    return {"loss": loss_value(ctx.gradients())}
