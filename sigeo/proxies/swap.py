"""SWAP (Peng et al., ICLR 2024, "SWAP-NAS: Sample-Wise Activation Patterns for Ultra-Fast NAS"): the
number of distinct sample-wise activation patterns of the network's ReLUs on a batch.

Every ReLU unit n has, over the B samples of a batch, a binary pattern (1[a_{b,n} > 0])_b; SWAP
counts the distinct patterns: |{(1[a_{b,n} > 0])_{b=1..B} : n}|. NASWOT looks at the transposed
matrix (one code per sample); SWAP's per-unit codes grow with the network's width and depth as well
as with how differently its units split the samples, and the paper reports a higher correlation than
NASWOT's. The authors' code (linked from the paper, ``SampleWiseActivationPatterns.calSWAP``) takes
the sign of every ReLU output, transposes to (units, samples) and counts ``torch.unique`` rows; this
is the same count over the supernet's own ReLUs (FC, EFC and the attention FFN of the blocks that
reach the head, ``recording_relu_patterns``) on the first probe batch.

The paper's regularised variant multiplies the count by exp(−(P − μ)²/σ) for the parameter count P
and a target size μ with width σ chosen per search space; the config has no size target, so only
the plain count is implemented (``params`` is scored beside it). A candidate without ReLUs scores NaN.
"""

from __future__ import annotations

import math

import torch

from ..space.supernet import recording_relu_patterns
from .gradients import ProbeContext
from .registry import register


def distinct_unit_patterns(codes: torch.Tensor) -> int:
    """Distinct columns of a [samples, units] binary activation matrix: the SWAP count."""
    return int(torch.unique(codes.T, dim=0).shape[0])


@register("swap", higher_is_better=True)
def swap(ctx: ProbeContext) -> dict[str, float]:
    dense, ids = ctx.batches[0][0], ctx.batches[0][1]
    with torch.no_grad(), recording_relu_patterns() as patterns:
        ctx.model(dense, ids)
    if not patterns:
        return {"swap": math.nan}
    return {"swap": float(distinct_unit_patterns(torch.cat(patterns, dim=1)))}
