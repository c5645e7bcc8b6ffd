"""A standalone network built from one architecture, for final training (docs/reference.md §2.7).

Only the chosen operators exist, at exactly the chosen widths; only the selected inputs are
concatenated (no zero padding, no masks). Projections are skipped where widths already match, as the
reference does. ``use_layernorm`` places a LayerNorm after every projection where the supernet has
one (and drops those projections' biases, as the supernet does); off, only attention's two remain,
as in the reference's final training. Without it nothing bounds the scale of a block's output:
dot-product and FM operators square it, so a chain of them turns Adagrad's first, sign-like steps
into logits of 1e20 and more. One deliberate difference: both mergers always read the pre-merge
tensors (the reference, for a 128-wide block with both mergers, appends rows that alias the dense
output and then receive the FM update in place).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .choice import Architecture, Block
from .ops import ATTN_HEADS, EMBED_DIM, INTERACT_ROWS, Stem, dp_rows, fm_vector, init_weights, pairwise_dots


def _pad(x: torch.Tensor, width: int) -> torch.Tensor:
    return F.pad(x, (0, width - x.shape[1])) if x.shape[1] < width else x


class SubBlock(nn.Module):
    """One block of a standalone subnet, sized from its actual inputs."""

    def __init__(
        self,
        block: Block,
        ops: tuple[str, str],
        dense_widths: Sequence[int],
        sparse_rows: Sequence[int],
        use_layernorm: bool = False,
    ):
        super().__init__()
        bias = not use_layernorm

        def ln(n: int) -> nn.Module:
            return nn.LayerNorm(n) if use_layernorm else nn.Identity()

        self.block, (self.dense_op, self.sparse_op) = block, ops
        self.dense_sel, self.sparse_sel = sorted(set(block.dense_idx)), sorted(set(block.sparse_idx))
        din = sum(dense_widths[j] for j in self.dense_sel)
        nin = sum(sparse_rows[j] for j in self.sparse_sel)
        d, sd = block.dense_dim, block.sparse_dim
        if self.dense_op == "fc":
            self.fc, self.fc_ln = nn.Linear(din, d, bias=bias), ln(d)
        elif self.dense_op == "dp":
            self.p = dp_rows(d)
            self.dp_dense = nn.Linear(din, EMBED_DIM, bias=bias) if din != EMBED_DIM else None
            self.dp_dense_ln = ln(EMBED_DIM) if self.dp_dense is not None else None
            self.dp_rows = nn.Linear(nin, self.p, bias=bias) if nin != self.p else None
            self.dp_rows_ln = ln(self.p) if self.dp_rows is not None else None
            self.dp_out, self.dp_ln = nn.Linear((self.p + 1) * self.p // 2, d, bias=bias), ln(d)
        else:  # sg / sum: binary ops on the left and right inputs, zero-padded to a common width
            width = max(dense_widths[block.dense_left_idx], dense_widths[block.dense_right_idx])
            self.binary_width = width
            if self.dense_op == "sg":
                self.sg_gate = nn.Linear(width, width)
            # SG's layers keep their biases, as in the supernet
            self.binary_out = nn.Linear(width, d, bias=bias or self.dense_op == "sg") if width != d else None
            self.binary_ln = ln(d)
        if self.sparse_op == "efc":
            self.efc, self.efc_ln = nn.Linear(nin, sd, bias=bias), ln(sd)
        else:
            self.attn_rows, self.attn_rows_ln = nn.Linear(nin, sd, bias=bias), ln(sd)
            self.attn = nn.MultiheadAttention(EMBED_DIM, ATTN_HEADS, batch_first=True)
            self.attn_ln1, self.attn_ln2 = nn.LayerNorm(EMBED_DIM), nn.LayerNorm(EMBED_DIM)
            self.attn_ffn1, self.attn_ffn2 = nn.Linear(EMBED_DIM, EMBED_DIM), nn.Linear(EMBED_DIM, EMBED_DIM)
        if block.interact:
            merged = INTERACT_ROWS * EMBED_DIM
            self.interact = nn.Linear(d, merged, bias=bias) if d != merged else None
            self.interact_ln = ln(merged)
        if block.deep_fm:
            self.fm = nn.Linear(EMBED_DIM, d, bias=bias) if d != EMBED_DIM else None
            self.fm_ln = ln(d)
        self.out_rows = sd + (INTERACT_ROWS if block.interact else 0)

    def forward(self, dense: list[torch.Tensor], sparse: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.block
        s = (
            torch.cat([sparse[j] for j in self.sparse_sel], dim=1)
            if len(self.sparse_sel) > 1
            else sparse[self.sparse_sel[0]]
        )
        if self.dense_op in ("fc", "dp"):
            x = (
                torch.cat([dense[j] for j in self.dense_sel], dim=1)
                if len(self.dense_sel) > 1
                else dense[self.dense_sel[0]]
            )
        if self.dense_op == "fc":
            dense_out = F.relu(self.fc_ln(self.fc(x)))
        elif self.dense_op == "dp":
            v = self.dp_dense_ln(self.dp_dense(x)) if self.dp_dense is not None else x
            rows = self.dp_rows_ln(self.dp_rows(s.transpose(1, 2))).transpose(1, 2) if self.dp_rows is not None else s
            dense_out = self.dp_ln(self.dp_out(pairwise_dots(torch.cat([v.unsqueeze(1), rows], dim=1))))
        else:
            left = _pad(dense[b.dense_left_idx], self.binary_width)
            right = _pad(dense[b.dense_right_idx], self.binary_width)
            y = torch.sigmoid(self.sg_gate(left)) * right if self.dense_op == "sg" else left + right
            dense_out = self.binary_ln(self.binary_out(y) if self.binary_out is not None else y)
        if self.sparse_op == "efc":
            sparse_out = F.relu(self.efc_ln(self.efc(s.transpose(1, 2)))).transpose(1, 2)
        else:
            y = self.attn_rows_ln(self.attn_rows(s.transpose(1, 2))).transpose(1, 2)
            h = self.attn_ln1(y + self.attn(y, y, y, need_weights=False)[0])
            sparse_out = self.attn_ln2(h + self.attn_ffn2(F.relu(self.attn_ffn1(h))))
        merged_dense, merged_sparse = dense_out, sparse_out
        if b.interact:
            rows = self.interact_ln(self.interact(dense_out) if self.interact is not None else dense_out)
            merged_sparse = torch.cat([sparse_out, rows.view(-1, INTERACT_ROWS, EMBED_DIM)], dim=1)
        if b.deep_fm:
            fm = fm_vector(sparse_out)
            merged_dense = dense_out + self.fm_ln(self.fm(fm) if self.fm is not None else fm)
        return merged_dense, merged_sparse


class StandaloneNet(nn.Module):
    """The network an architecture describes, with the reference's initialisation.

    ``use_layernorm`` defaults to the reference's final training (off); see the module docstring.
    """

    def __init__(
        self, arch: Architecture, num_dense: int, table_sizes: Sequence[int], use_layernorm: bool = False
    ) -> None:
        super().__init__()
        if not arch.is_architecture():
            raise ValueError("a standalone network needs exactly one dense and one sparse operator per block")
        self.arch, self.use_layernorm = arch, use_layernorm
        self.stem = Stem(table_sizes)
        widths, rows = [num_dense], [len(table_sizes)]
        blocks = []
        for block in arch.blocks:
            ops = (
                arch.space.nodes[block.dense_nodes(arch.space)[0]],
                arch.space.nodes[block.sparse_nodes(arch.space)[0]],
            )
            sub = SubBlock(block, ops, widths, rows, use_layernorm)
            blocks.append(sub)
            widths.append(block.dense_dim)
            rows.append(sub.out_rows)
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(widths[-1] + rows[-1] * EMBED_DIM, 1)
        init_weights(self)

    def forward(self, dense: torch.Tensor, sparse_ids: torch.Tensor) -> torch.Tensor:
        dense_acts, sparse_acts = [dense], [self.stem(sparse_ids)]
        for block in self.blocks:
            d, s = block(dense_acts, sparse_acts)
            dense_acts.append(d)
            sparse_acts.append(s)
        return self.head(torch.cat([dense_acts[-1], sparse_acts[-1].flatten(1)], dim=1)).squeeze(1)


def standalone_size(
    arch: Architecture, num_dense: int, num_sparse: int, use_layernorm: bool = False
) -> dict[str, float]:
    """Dense #params and forward FLOPs per sample of ``StandaloneNet(arch, ..., use_layernorm)``, from its shapes alone.

    ``flops_2x_all_blocks``: FLOPs as ``torch.utils.flop_counter`` counts them on the built network —
    2 per multiply-add of every matrix product of every block, also of blocks whose outputs reach
    nothing: the linear layers, the dot-product operator's T×T products, attention's QKᵀ and AV;
    additions, norms and activations are free — but in microseconds instead of a network build and
    a traced forward per candidate (a test checks both agree). ``mflops_nasrec``: the same network
    in the NASRec papers' convention (:func:`nasrec_mflops`), the figure to compare with theirs.
    """
    params = flops = 0

    def linear(n_in: int, n_out: int, positions: int = 1, normed: bool = False, sg: bool = False) -> None:
        """A Linear layer; ``normed``: one the supernet follows by a LayerNorm, which (when layer norm is
        on) adds 2 parameters a unit and replaces the bias, except SG's, which keeps it."""
        nonlocal params, flops
        params += n_in * n_out + bias_and_norm(n_out, normed, sg)
        flops += 2 * n_in * n_out * positions

    def bias_and_norm(n: int, normed: bool, sg: bool = False) -> int:
        if not (normed and use_layernorm):
            return n
        return 2 * n + (n if sg else 0)

    def norm(n: int) -> None:
        """A LayerNorm on a tensor no projection feeds (where a width already matches)."""
        nonlocal params
        params += 2 * n if use_layernorm else 0

    for block, dense_op, sparse_op, din, nin, width in _block_inputs(arch, num_dense, num_sparse):
        d, sd = block.dense_dim, block.sparse_dim
        if dense_op == "fc":
            linear(din, d, normed=True)
        elif dense_op == "dp":
            p = dp_rows(d)
            if din != EMBED_DIM:
                linear(din, EMBED_DIM, normed=True)
            if nin != p:
                linear(nin, p, EMBED_DIM, normed=True)
            flops += 2 * (p + 1) ** 2 * EMBED_DIM
            linear((p + 1) * p // 2, d, normed=True)
        else:
            if dense_op == "sg":
                linear(width, width)
            if width != d:
                linear(width, d, normed=True, sg=dense_op == "sg")
            else:
                norm(d)
        linear(nin, sd, EMBED_DIM, normed=True)  # EFC, or attention's row projection
        if sparse_op == "attn":
            linear(EMBED_DIM, 3 * EMBED_DIM, sd)  # Q, K, V
            flops += 2 * 2 * sd * sd * EMBED_DIM  # QKᵀ and AV
            for _ in range(3):  # output projection, two feed-forward layers
                linear(EMBED_DIM, EMBED_DIM, sd)
            params += 2 * 2 * EMBED_DIM  # two LayerNorms
        for wanted, n_in, n_out in ((block.interact, d, INTERACT_ROWS * EMBED_DIM), (block.deep_fm, EMBED_DIM, d)):
            if wanted and n_in != n_out:
                linear(n_in, n_out, normed=True)
            elif wanted:
                norm(n_out)
    last = arch.blocks[-1]
    linear(last.dense_dim + _out_rows(last) * EMBED_DIM, 1)
    return {
        "params": float(params),
        "flops_2x_all_blocks": float(flops),
        "mflops_nasrec": nasrec_mflops(arch, num_dense, num_sparse),
    }


def _out_rows(block: Block) -> int:
    """Embedding rows of a block's sparse output: its sparse width, plus the dense→sparse merger's rows."""
    return block.sparse_dim + (INTERACT_ROWS if block.interact else 0)


def _block_inputs(
    arch: Architecture, num_dense: int, num_sparse: int
) -> Iterator[tuple[Block, str, str, int, int, int]]:
    """Each block with its dense and sparse operators' names, the width of its concatenated dense
    inputs, the rows of its concatenated sparse inputs, and the wider of its left and right dense
    inputs (what the SG and Sum operators read)."""
    widths, rows = [num_dense], [num_sparse]
    for block in arch.blocks:
        dense_op = arch.space.nodes[block.dense_nodes(arch.space)[0]]
        sparse_op = arch.space.nodes[block.sparse_nodes(arch.space)[0]]
        din = sum(widths[j] for j in set(block.dense_idx))
        nin = sum(rows[j] for j in set(block.sparse_idx))
        pair = max(widths[block.dense_left_idx], widths[block.dense_right_idx])
        yield block, dense_op, sparse_op, din, nin, pair
        widths.append(block.dense_dim)
        rows.append(_out_rows(block))


def _block_macs(arch: Architecture, num_dense: int, num_sparse: int) -> list[dict[str, int]]:
    """Multiply-adds per sample of each block's parts: ``dense`` (its dense operator), ``sparse`` (its
    sparse operator), ``interact`` (the dense→sparse projection) and ``fm`` (the FM projection)."""
    parts = []
    for block, dense_op, sparse_op, din, nin, width in _block_inputs(arch, num_dense, num_sparse):
        d, sd = block.dense_dim, block.sparse_dim
        if dense_op == "fc":
            dense = din * d
        elif dense_op == "dp":
            p = dp_rows(d)
            dense = (din * EMBED_DIM if din != EMBED_DIM else 0) + (nin * p * EMBED_DIM if nin != p else 0)
            dense += (p + 1) ** 2 * EMBED_DIM + (p + 1) * p // 2 * d
        else:
            dense = (width * width if dense_op == "sg" else 0) + (width * d if width != d else 0)
        sparse = nin * sd * EMBED_DIM
        if sparse_op == "attn":  # Q, K, V; QKᵀ and AV; output projection and two feed-forward layers
            sparse += sd * EMBED_DIM * 3 * EMBED_DIM + 2 * sd * sd * EMBED_DIM + 3 * sd * EMBED_DIM * EMBED_DIM
        merged = INTERACT_ROWS * EMBED_DIM
        parts.append(
            {
                "dense": dense,
                "sparse": sparse,
                "interact": d * merged if block.interact and d != merged else 0,
                "fm": EMBED_DIM * d if block.deep_fm and d != EMBED_DIM else 0,
            }
        )
    return parts


def nasrec_mflops(arch: Architecture, num_dense: int, num_sparse: int) -> float:
    """Forward multiply-adds per sample, in millions, of the operators whose results reach the logit.

    NASRec counts a standalone network with fvcore on a traced forward: one FLOP per multiply-add,
    and the trace drops every computation whose result nothing reads. So a block counts only where
    its output is read, and only the part that is read: a block whose dense output alone is read
    runs its sparse operator only to feed its FM merger; one whose sparse output alone is read runs
    its dense operator only to feed its dense→sparse merger. NASRec's published figures for its six
    searched networks are 2.20 / 1.45 (Criteo, Small / Full), 3.08 / 1.87 (Avazu), 3.48 / 1.09 (KDD);
    this count gives 2.21 / 1.45, 3.09 / 1.87, 3.48 / 1.08 for them.
    """
    parts = _block_macs(arch, num_dense, num_sparse)
    n = arch.num_blocks
    dense_read, sparse_read = {n}, {n}  # input indices whose dense / sparse tensor is read; n = the last block
    last = arch.blocks[-1]
    total = last.dense_dim + _out_rows(last) * EMBED_DIM  # the head
    for b in reversed(range(n)):
        block, part = arch.blocks[b], parts[b]
        dense_op = arch.space.nodes[block.dense_nodes(arch.space)[0]]
        want_dense, want_sparse = b + 1 in dense_read, b + 1 in sparse_read
        run_dense = want_dense or (want_sparse and block.interact)
        run_sparse = want_sparse or (want_dense and block.deep_fm)
        if run_dense:
            total += part["dense"]
            if dense_op in ("fc", "dp"):
                dense_read.update(block.dense_idx)
            if dense_op == "dp":
                sparse_read.update(block.sparse_idx)
            if dense_op in ("sg", "sum"):
                dense_read.update((block.dense_left_idx, block.dense_right_idx))
        if run_sparse:
            total += part["sparse"]
            sparse_read.update(block.sparse_idx)
        total += (part["interact"] if want_sparse else 0) + (part["fm"] if want_dense else 0)
    return total / 1e6
