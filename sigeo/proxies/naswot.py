"""NASWOT (Mellor et al., 2021): log|K| of the Hamming-similarity kernel of the samples' ReLU on/off codes.

Networks that give different inputs different activation patterns score higher. The codes come from
the supernet's own ReLUs (``recording_relu_patterns``) of the blocks that reach the head (the
others are not computed), on the first probe batch; a candidate without ReLUs scores NaN.
"""

from __future__ import annotations

import math

import torch

from ..space.supernet import recording_relu_patterns
from .gradients import ProbeContext
from .registry import register


@register("naswot", higher_is_better=True)
def naswot(ctx: ProbeContext) -> dict[str, float]:
    dense, ids = ctx.batches[0][0], ctx.batches[0][1]
    with torch.no_grad(), recording_relu_patterns() as patterns:
        ctx.model(dense, ids)
    if not patterns:
        return {"naswot": math.nan}
    codes = torch.cat(patterns, dim=1).double()
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    return {"naswot": float(torch.linalg.slogdet(kernel).logabsdet)}
