"""grad_norm (Abdelfattah et al., zero-cost-nas): Σ_p ‖g_p‖₂, averaged over the probe batches."""

from __future__ import annotations

import torch

from .gradients import ProbeContext
from .registry import register


@register("grad_norm", higher_is_better=True)
def grad_norm(ctx: ProbeContext) -> dict[str, float]:
    record = ctx.gradients()
    norms = torch.stack([g.double().norm(dim=1) for g in record.grads.values()])  # [P, E]
    return {"grad_norm": float(norms.sum(0).mean())}
