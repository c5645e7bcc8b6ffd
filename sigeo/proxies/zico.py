"""ZiCo: Σ_p log Σ_{i: σ_i>0} μ_i/σ_i — high mean-to-spread gradient ratios mark trainable networks."""

from __future__ import annotations

import torch

from .gradients import GradientMoments, ProbeContext
from .registry import register


def zico_value(moments: GradientMoments, first_only: bool = False) -> float:
    """The ZiCo term over every measured parameter (parameters whose gradient never varies add nothing).

    ``first_only`` reproduces the reference's bug (REFERENCE §5.3.1): each parameter contributes only
    log(μ/σ) of its first element with σ ≠ 0 instead of the log of the sum over all such elements.
    """
    mu, sigma, varying = moments.mu, moments.sigma, moments.varying
    if first_only:
        ratios = []
        for m, s, v in zip(
            mu.split(moments.sizes), sigma.split(moments.sizes), varying.split(moments.sizes), strict=True
        ):
            first = int(torch.argmax(v.to(torch.uint8)))  # the first True, or 0 when there is none
            if v.numel() and v[first]:
                ratios.append(m[first] / s[first])
        ratio = torch.stack(ratios) if ratios else mu.new_zeros(0)
        return float(torch.log(ratio[ratio != 0]).sum())
    ratios = moments.per_parameter_sum(torch.div(mu, sigma).masked_fill_(~varying, 0.0))
    counted = torch.stack([v.any() for v in varying.split(moments.sizes)])
    return float(torch.log(ratios[counted]).sum())


@register("zico", higher_is_better=True)
def zico(ctx: ProbeContext) -> dict[str, float]:
    return {"zico": zico_value(ctx.moments())}
