"""MeCo (Jiang, Wang & Bie, NeurIPS 2023, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via
Minimum Eigenvalue of Correlation"): Σ_l λ_min(P(f_l)) over the layers' feature maps f_l.

The paper's P(f_l) is the Pearson correlation matrix between the C channels of layer l for ONE input
image, the H·W spatial positions being the observations; a network whose channels are decorrelated
(λ_min far from 0) trains better. Its cheaper MeCo_opt takes 8 random channels per layer and scales
the minimum eigenvalue by C/8 (the authors' code, linked from the paper: ``get_score`` with
``measure='meco_opt'``; NaN/inf correlations, those of constant channels, are set to 0).

CTR networks have no spatial axis: one sample's dense output is a single vector, whose channels
have no correlation. So here the observations are the samples of the first probe batch: for each
live choice block l (:mod:`.layers`; its dense and sparse outputs, F_l units side by side), k = 8 of
its F_l units are drawn without replacement by a generator seeded with ``(seed, l)``, P is their
k × k correlation over the B samples (NaN → 0, as the authors do), and the layer adds
λ_min(P) · F_l / k (all units and factor 1 where F_l ≤ k). Sampling is also what keeps λ_min
informative: the full F_l × F_l matrix over B samples has rank < B, so for the wide layers of the
space (F_l up to ~1,000 and more) its minimum eigenvalue would be 0 for every candidate. The input
(layer 0) is the same for every candidate and is left out. A model that records no layers scores NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .gradients import ProbeContext
from .layers import layer_matrix, layer_outputs
from .registry import register

SAMPLED_UNITS = 8


def sampled_units(width: int, seed: int, layer: int) -> np.ndarray:
    """The units of a ``width``-unit layer MeCo_opt correlates: all, or 8 drawn with the (seed, layer) generator."""
    if width <= SAMPLED_UNITS:
        return np.arange(width)
    return np.random.default_rng([seed, layer]).choice(width, SAMPLED_UNITS, replace=False)


def min_correlation_eigenvalue(features: torch.Tensor) -> float:
    """λ_min of the correlation matrix of the columns of ``features`` [B, k] over its rows (NaN → 0)."""
    corr = torch.nan_to_num(torch.corrcoef(features.T), nan=0.0, posinf=0.0, neginf=0.0)
    return float(torch.linalg.eigvalsh(corr)[0])


@register("meco", higher_is_better=True)
def meco(ctx: ProbeContext) -> dict[str, float]:
    dense, ids = ctx.batches[0][0], ctx.batches[0][1]
    with torch.no_grad():
        layers = layer_outputs(ctx.model, dense, ids)[1:]
    if not layers:
        return {"meco": math.nan}
    total = 0.0
    for index, tensors in enumerate(layers, start=1):
        features = layer_matrix(tensors)
        units = sampled_units(features.shape[1], ctx.settings.seed, index)
        total += min_correlation_eigenvalue(features[:, units]) * features.shape[1] / len(units)
    return {"meco": total}
