"""Layer outputs of a supernet candidate for the feature-map proxies (MeCo, AZ-NAS).

A CTR subnet has no spatial axis: a layer's output is, per sample, its dense output [d] and its
sparse rows [E, rows] (plus the dense-to-sparse merger's rows), recorded by the supernet's own
forward (``recording_layer_outputs``). Each layer becomes one [B, F] matrix, a sample per row
and the layer's units side by side. Layer 0 is the network's input (dense features and looked-up
embeddings); then one layer per live choice block, in order. A model that is not a supernet
candidate records no layers.
"""

from __future__ import annotations

import torch

from ..space.supernet import recording_layer_outputs


def layer_outputs(model: torch.nn.Module, dense: torch.Tensor, ids: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """One forward of ``model(dense, ids)`` under the current grad mode; each layer's tensors as the
    next layers read them (so autograd can differentiate a later layer with respect to them)."""
    with recording_layer_outputs() as layers:
        model(dense, ids)
    return layers


def layer_matrix(tensors: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """A layer's outputs as one [B, F] float64 matrix: every tensor flattened per sample, side by side."""
    return torch.cat([t.detach().flatten(1) for t in tensors], dim=1).double()
