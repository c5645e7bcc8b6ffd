"""AZ-NAS (Lee & Ham, CVPR 2024, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search"):
expressivity, progressivity, trainability and complexity, combined by rank aggregation.

The components, as in the authors' code (github.com/cvlab-yonsei/AZ-NAS,
``ImageNet_MBV2/ZeroShotProxy/compute_az_nas_score.py``), adapted to CTR subnets whose layers
(:mod:`.layers`: layer 0 the input, then each live choice block's dense and sparse outputs) have
no spatial axis, so the samples of the first probe batch are the observations where the authors
use the B·H·W positions:

- expressivity e_l: the entropy −Σ_i p_i log(p_i + 1e-8) of the normalised eigenvalues
  p_i = s_i / Σ s of the covariance of layer l's units over the samples (isotropic features score
  high); ``aznas_expressivity`` = Σ_{l≥1} e_l. A layer that maps every sample to one point has no
  spectrum and counts 0 (the authors' code would give NaN, mapped to −inf).
- progressivity: min_{l≥1} (e_l − e_{l−1}), with layer 0 the input; the smallest step by which
  expressivity grows from one layer to the next (``aznas_progressivity``).
- trainability: for each block l, a Rademacher vector g_out over its outputs (generator seeded
  with the run's seed) is back-propagated to every earlier layer's outputs, giving g_in; with
  M = g_inᵀ g_out / B and σ its largest singular value, the layer scores −σ − 1/(σ + 1e-6) + 2,
  which is 0 at σ = 1 (a Jacobian that neither shrinks nor amplifies) and negative otherwise;
  ``aznas_trainability`` is the mean over blocks. The authors take one layer's Jacobian with respect
  to the previous one; a NASRec block reads any earlier outputs (the supernet sizes its inputs for
  the concatenation of all of them), so here g_in spans every earlier layer, as total derivatives
  through the subnet's graph (zeros for outputs it does not depend on).
- complexity: the candidate's forward FLOPs per sample (``aznas_complexity``).

The paper combines them over the candidates being compared: with Rank_m(a) ∈ 1..N the rank of
candidate a among N by component m (1 the lowest, ties averaged), s_AZ(a) = Σ_m log(Rank_m(a) / N).
The registry scores one candidate at a time, so:

- :func:`rank_aggregate` computes the paper's s_AZ where a population exists: the correlation study
  replaces each level's ``aznas`` column by it, over that level's subnets (its table is the paper's
  score);
- per candidate (a search run with criterion ``aznas``), ``aznas`` is the plain sum expressivity +
  progressivity + trainability + log(FLOPs), a stand-in with the same directions and no claim to
  the paper's weighting.

A model that records no layers (not a supernet candidate) scores NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from .gradients import ProbeContext
from .layers import layer_matrix, layer_outputs
from .registry import register

COMPONENTS = ("aznas_expressivity", "aznas_progressivity", "aznas_trainability", "aznas_complexity")


def spectral_entropy(features: torch.Tensor) -> float:
    """Entropy of the normalised eigenvalues of the covariance of the columns of ``features`` [B, F]
    over its rows. Its nonzero eigenvalues are those of the smaller Gram matrix of the centred
    features over B (B × B when F > B), which is cheaper than the F × F covariance; round-off's
    negative eigenvalues count as 0."""
    centred = features - features.mean(dim=0, keepdim=True)
    gram = centred @ centred.T if centred.shape[1] > centred.shape[0] else centred.T @ centred
    s = torch.linalg.eigvalsh(gram).clamp(min=0) / features.shape[0]
    total = s.sum()
    if total == 0:
        return 0.0
    p = s / total
    return float(-(p * torch.log(p + 1e-8)).sum())


def trainability_term(g_in: torch.Tensor, g_out: torch.Tensor) -> float:
    """−σ − 1/(σ + 1e-6) + 2 for σ the largest singular value of M = g_inᵀ g_out / B ([B, F_in], [B, F_out]).

    M is F_in × F_out, thousands by thousands for a deep subnet, but of rank ≤ B, and σ² is the
    largest eigenvalue of MᵀM = g_outᵀ G g_out / B² with G = g_in g_inᵀ (B × B). Where F_out ≤ B that
    F_out × F_out matrix is the small one; otherwise its nonzero eigenvalues are those of the B × B
    matrix Lᵀ G L / B² for any L with L Lᵀ = g_out g_outᵀ: its Cholesky factor, or V·√W from its
    eigendecomposition where it is singular.
    """
    b = g_in.shape[0]
    gram = (g_in @ g_in.T).double()  # the long products in the gradients' dtype; the top eigenvalue is robust
    g_out = g_out.double()
    if g_out.shape[1] <= b:
        small = g_out.T @ (gram @ g_out)
    else:
        outer = g_out @ g_out.T
        factor, info = torch.linalg.cholesky_ex(outer)
        if info:
            w, v = torch.linalg.eigh(outer)
            factor = v * w.clamp(min=0).sqrt()
        small = factor.T @ gram @ factor
    sigma = float(torch.linalg.eigvalsh(small)[-1].clamp(min=0).sqrt()) / b
    return -sigma - 1.0 / (sigma + 1e-6) + 2.0


@contextmanager
def _all_trainable(model: torch.nn.Module) -> Iterator[None]:
    """Every parameter of ``model`` requires grad inside (so each layer's output is in the graph), restored after."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(True)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def rademacher_like(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """±1 with equal probability, shaped like ``tensor``, drawn on the CPU from ``generator``."""
    draw = torch.randint(0, 2, tensor.shape, generator=generator, dtype=torch.float64)
    return (draw * 2 - 1).to(device=tensor.device, dtype=tensor.dtype)


def components(ctx: ProbeContext) -> dict[str, float] | None:
    """The four AZ-NAS components of ``ctx``'s candidate, or None when it records no layers."""
    dense, ids = ctx.batches[0][0], ctx.batches[0][1]
    with torch.enable_grad(), _all_trainable(ctx.model):
        layers = layer_outputs(ctx.model, dense.detach().clone().requires_grad_(), ids)
        if len(layers) < 2:
            return None
        entropies = [spectral_entropy(layer_matrix(layer)) for layer in layers]
        generator = torch.Generator().manual_seed(ctx.settings.seed)
        terms = []
        for index in range(1, len(layers)):
            earlier = [t for layer in layers[:index] for t in layer]
            g_out = [rademacher_like(t, generator) for t in layers[index]]
            scalar = sum((t * g).sum() for t, g in zip(layers[index], g_out, strict=True))
            wanted = [t for t in earlier if t.requires_grad]
            grads = dict(zip(map(id, wanted), torch.autograd.grad(scalar, wanted, retain_graph=True,
                                                                   allow_unused=True), strict=True))  # fmt: skip
            g_in = [grads.get(id(t)) for t in earlier]
            g_in = [torch.zeros_like(t) if g is None else g for t, g in zip(earlier, g_in, strict=True)]
            flat = [torch.cat([t.flatten(1) for t in tensors], dim=1) for tensors in (g_in, g_out)]
            terms.append(trainability_term(*flat))
    steps = np.diff(entropies)
    return {
        "aznas_expressivity": float(sum(entropies[1:])),
        "aznas_progressivity": float(steps.min()),
        "aznas_trainability": float(np.mean(terms)),
        "aznas_complexity": float(ctx.extras["flops_2x_all_blocks"]),
    }


@register("aznas", higher_is_better=True)
def aznas(ctx: ProbeContext) -> dict[str, float]:
    parts = components(ctx)
    if parts is None:
        return {"aznas": math.nan}
    stand_in = sum(parts[k] for k in COMPONENTS[:3]) + math.log(parts["aznas_complexity"])
    return {**parts, "aznas": stand_in}


def rank_aggregate(frame: pd.DataFrame) -> pd.Series:
    """The paper's s_AZ = Σ_m log(Rank_m / N) over the rows of ``frame`` (one candidate each, the
    :data:`COMPONENTS` as columns): ranks 1..N from the lowest, ties averaged; NaN stays NaN."""
    n = len(frame)
    return sum(np.log(frame[m].rank(method="average", na_option="keep") / n) for m in COMPONENTS)
