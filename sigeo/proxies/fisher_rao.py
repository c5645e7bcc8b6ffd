"""Fisher–Rao norm term: log |θ · Σ_b g_b| — the loss landscape's local curvature along θ (SiGeo)."""

from __future__ import annotations

import torch

from .gradients import GradientRecord, ProbeContext
from .registry import register

EPS = 1e-10


def fisher_rao_value(record: GradientRecord) -> float:
    """log(|Σ_p θ_p · Σ_b G_{p,b}| + 1e-10), θ being the parameter values after the probe pass."""
    inner = record.moments.inner.sum()
    return float(torch.log(inner.abs() + EPS))


@register("fisher_rao", higher_is_better=True)
def fisher_rao(ctx: ProbeContext) -> dict[str, float]:
    return {"fisher_rao": fisher_rao_value(ctx.gradients())}
