"""Resource estimates Snakemake declares per job (memory for SLURM and for local scheduling)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import DatasetSpec
from .space.choice import get_space
from .space.ops import EMBED_DIM, INTERACT_ROWS, dp_rows

if TYPE_CHECKING:
    from .warmup import WarmupSettings

BYTES = 4  # float32
COPIES = 3  # weights, gradients, Adagrad state
HEADROOM_MB = 1500


def supernet_params(
    num_dense: int, num_sparse: int, space_name: str, num_blocks: int, widths: dict[str, list[int]] | None = None
) -> int:
    """Dense (non-embedding) parameters of a supernet, from the shapes of docs/reference.md §2.6."""
    space = get_space(space_name, widths)
    w, r = space.max_dense, space.max_sparse
    p = dp_rows(w)
    total = 0
    for b in range(num_blocks):
        din, nin = num_dense + w * b, num_sparse + (r + INTERACT_ROWS) * b
        per_op = {
            "fc": din * w,
            "dp": din * EMBED_DIM + nin * p + (p + 1) * p // 2 * w,
            "sg": din * din + din * w,
            "sum": din * w,
            "efc": nin * r,
            "attn": nin * r + 6 * EMBED_DIM * EMBED_DIM,
        }
        total += sum(per_op[op] for op in space.nodes) + w * INTERACT_ROWS * EMBED_DIM + EMBED_DIM * w
    return total + w + (r + INTERACT_ROWS) * EMBED_DIM


def _embedding_params(spec: DatasetSpec) -> int:
    return sum(spec.raw_format.table_sizes(spec.max_table_size)) * EMBED_DIM


def supernet_mem_mb(spec: DatasetSpec, space_name: str, warmup: WarmupSettings, copies: int = COPIES) -> int:
    """Training needs ``COPIES`` of the supernet; a search only its weights (candidates own their copies).
    ``warmup`` gives the supernet's blocks and widths."""
    fmt = spec.raw_format
    dense = supernet_params(
        len(fmt.dense_features), len(fmt.sparse_features), space_name, warmup.num_blocks, warmup.space_widths
    )
    return int((_embedding_params(spec) + dense) * BYTES * copies / 2**20) + HEADROOM_MB


def standalone_mem_mb(spec: DatasetSpec) -> int:
    """A standalone subnet's dense layers are small next to its embedding tables."""
    return int(_embedding_params(spec) * BYTES * COPIES / 2**20) + HEADROOM_MB
