"""Pieces shared by the supernet and the standalone subnets: stem, interaction maths, initialisation."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

EMBED_DIM = 16
INTERACT_ROWS = 8  # the dense->sparse merger adds 8 rows of 16 (docs/reference.md §2.5)
ATTN_HEADS = 8
ATTN_LN_INIT = 0.17


def dp_rows(dense_dim: int) -> int:
    """Rows the dot-product operator reduces the sparse input to: round(sqrt(2 * width))."""
    return round((2 * dense_dim) ** 0.5)


def fm_vector(sparse: torch.Tensor) -> torch.Tensor:
    """FM second-order term per embedding coordinate: (sum_r s_r)^2 - sum_r s_r^2, no 1/2, [B, E]."""
    return sparse.sum(dim=1).square() - sparse.square().sum(dim=1)


def pairwise_dots(t: torch.Tensor) -> torch.Tensor:
    """All pairwise dot products of the rows of ``t`` [B, T, E], strictly lower triangle, [B, T(T-1)/2]."""
    n = t.shape[1]
    rows, cols = torch.tril_indices(n, n, offset=-1, device=t.device)
    # one index_select over the flattened products: half the time of [:, rows, cols], forward and backward
    return torch.bmm(t, t.transpose(1, 2)).flatten(1).index_select(1, rows * n + cols)


class Stem(nn.Module):
    """Dense input as is; categorical ids through one embedding table per feature.

    The tables live in one ``nn.Embedding`` with per-feature row offsets (one lookup instead of C),
    with sparse gradients so an optimizer step touches only the rows in the batch.
    """

    def __init__(self, table_sizes: Sequence[int]) -> None:
        super().__init__()
        self.table_sizes = list(table_sizes)
        self.table_offsets = [0, *itertools.accumulate(self.table_sizes[:-1])]
        self.register_buffer("offsets", torch.empty(len(self.table_sizes), dtype=torch.long), persistent=False)
        self.reset_offsets()
        self.embedding = nn.Embedding(sum(self.table_sizes), EMBED_DIM, sparse=True)

    def reset_offsets(self) -> None:
        """Fill the row offsets of the feature tables (a buffer no saved state holds: a module given
        storage after being made on the meta device must call this)."""
        if not self.offsets.is_meta:
            self.offsets.copy_(torch.tensor(self.table_offsets, device=self.offsets.device))

    def forward(self, sparse: torch.Tensor) -> torch.Tensor:
        return self.embedding(sparse + self.offsets)

    def reset_parameters(self) -> None:
        """Xavier-normal per feature table, as if each were its own ``nn.Embedding`` (docs/reference.md §3.2)."""
        with torch.no_grad():
            for offset, size in zip(self.table_offsets, self.table_sizes, strict=True):
                nn.init.xavier_normal_(self.embedding.weight[offset : offset + size])


def init_weights(model: nn.Module) -> None:
    """docs/reference.md §3.2: Linear xavier-uniform + zero bias, attention matrices xavier-uniform and
    vectors zero, LayerNorm default except the attention ones at 0.17, embeddings xavier-normal."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.MultiheadAttention):
            nn.init.xavier_uniform_(module.in_proj_weight)
            nn.init.zeros_(module.in_proj_bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, Stem):
            module.reset_parameters()
    for name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm) and name.rsplit(".", 1)[-1] in ("attn_ln1", "attn_ln2"):
            nn.init.constant_(module.weight, ATTN_LN_INIT)
