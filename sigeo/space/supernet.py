"""The NASRec weight-sharing supernet (REFERENCE §2.5–2.6), built eagerly at maximum width.

Every layer is sized for the zero-padded concatenation of all of a block's candidate inputs, as in
the reference, but a forward pass only touches what the path selects: the selected inputs' live
columns (``Segment``s of the full input) and the leading rows of each weight up to the chosen width
("slice" mode), so compute scales with the subnet. "mask" mode instead computes every operator at
full width and zeroes the columns beyond the chosen width, which is the reference's behaviour and
differs from slicing only where a LayerNorm or attention sees the zeroed units; with layer norm off
the two agree on every operator but attention (a test checks this).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .choice import Block, Path, SearchSpace
from .ops import ATTN_HEADS, EMBED_DIM, INTERACT_ROWS, Stem, dp_rows, fm_vector, init_weights, pairwise_dots

Segment = tuple[int, int]  # (first column of the full concatenated input, number of columns)
Rows = tuple[int, int]  # (first row, number of rows)


class Usage:
    """What one forward pass read: for each parameter, the row range and column segments it used.

    Proxies measure "the parameters the candidate uses"; with slicing that is a sub-block of each
    shared weight, and gathering only those blocks keeps a candidate's gradient record the size of
    the candidate, not of the supernet. ``relu_codes`` collects each ReLU's on/off pattern (NASWOT).
    """

    def __init__(self, record_relu: bool = False) -> None:
        self.regions: dict[int, tuple[nn.Parameter, Rows | None, tuple[Segment, ...] | None]] = {}
        self.record_relu = record_relu
        self.relu_codes: list[torch.Tensor] = []

    def note(self, param: nn.Parameter | None, rows: Rows | None = None, cols: Sequence[Segment] | None = None) -> None:
        if param is not None:
            self.regions[id(param)] = (param, rows, tuple(cols) if cols is not None else None)

    def note_module(self, module: nn.Module) -> None:
        for param in module.parameters():
            self.note(param)


_USAGE: ContextVar[Usage | None] = ContextVar("sigeo_supernet_usage", default=None)


@contextlib.contextmanager
def record_usage(record_relu: bool = False) -> Iterator[Usage]:
    """Record which parameter regions (and, optionally, which ReLU patterns) forwards inside use."""
    usage = Usage(record_relu)
    token = _USAGE.set(usage)
    try:
        yield usage
    finally:
        _USAGE.reset(token)


def _note(param: nn.Parameter | None, rows: Rows | None = None, cols: Sequence[Segment] | None = None) -> None:
    usage = _USAGE.get()
    if usage is not None:
        usage.note(param, rows, cols)


def _relu(x: torch.Tensor) -> torch.Tensor:
    out = F.relu(x)
    usage = _USAGE.get()
    if usage is not None and usage.record_relu:
        usage.relu_codes.append((out.detach() > 0).flatten(1))
    return out


@dataclass
class SparseAct:
    """A block's sparse output: the operator rows (logical rows 0..r) and the merger rows (R..R+8)."""

    main: torch.Tensor
    extra: torch.Tensor | None


def _columns(weight: torch.Tensor, segments: Sequence[Segment]) -> torch.Tensor:
    if len(segments) == 1:
        start, n = segments[0]
        return weight[:, start : start + n]
    return torch.cat([weight[:, start : start + n] for start, n in segments], dim=1)


def seg_linear(x: torch.Tensor, lin: nn.Linear, segments: Sequence[Segment], n_out: int) -> torch.Tensor:
    """``lin`` applied to an input whose columns are ``segments`` of its full input (the rest zero),
    keeping only the first ``n_out`` outputs: weight sharing by slicing."""
    _note(lin.weight, (0, n_out), segments)
    _note(lin.bias, (0, n_out))
    weight = _columns(lin.weight[:n_out], segments)
    bias = lin.bias[:n_out] if lin.bias is not None else None
    return F.linear(x, weight, bias)


def row_linear(s: torch.Tensor, lin: nn.Linear, segments: Sequence[Segment], n_out: int) -> torch.Tensor:
    """A Linear over the row axis of ``s`` [B, N, E]; returns [B, E, n_out] (rows last, for LayerNorm)."""
    return seg_linear(s.transpose(1, 2), lin, segments, n_out)


def layer_norm(x: torch.Tensor, ln: nn.LayerNorm | None) -> torch.Tensor:
    """LayerNorm over the last axis using the leading entries of ``ln``'s affine parameters."""
    if ln is None:
        return x
    n = x.shape[-1]
    _note(ln.weight, (0, n))
    _note(ln.bias, (0, n))
    return F.layer_norm(x, (n,), ln.weight[:n], ln.bias[:n], ln.eps)


class SuperBlock(nn.Module):
    """One choice block holding every operator of the space at maximum width."""

    def __init__(self, b: int, space: SearchSpace, dense_in: int, sparse_in: int, use_layernorm: bool) -> None:
        super().__init__()
        w, r = space.max_dense, space.max_sparse
        self.space, self.w, self.r = space, w, r
        self.dense_offsets = [0] + [dense_in + w * (j - 1) for j in range(1, b + 1)]
        self.sparse_offsets = [0] + [sparse_in + (r + INTERACT_ROWS) * (j - 1) for j in range(1, b + 1)]
        din, nin = dense_in + w * b, sparse_in + (r + INTERACT_ROWS) * b
        self.din, self.nin = din, nin
        bias = not use_layernorm

        def ln(n: int) -> nn.LayerNorm | None:
            return nn.LayerNorm(n) if use_layernorm else None

        nodes = space.nodes
        if "fc" in nodes:
            self.fc, self.fc_ln = nn.Linear(din, w, bias=bias), ln(w)
        if "dp" in nodes:
            self.p = dp_rows(w)
            self.dp_dense = nn.Linear(din, EMBED_DIM, bias=bias) if din != EMBED_DIM else None
            self.dp_dense_ln = ln(EMBED_DIM) if self.dp_dense is not None else None
            self.dp_rows = nn.Linear(nin, self.p, bias=bias) if nin != self.p else None
            self.dp_rows_ln = ln(self.p) if self.dp_rows is not None else None
            self.dp_out, self.dp_ln = nn.Linear((self.p + 1) * self.p // 2, w, bias=bias), ln(w)
        if "sg" in nodes:
            self.sg_gate = nn.Linear(din, din, bias=True)
            self.sg_out = nn.Linear(din, w, bias=True) if din != w else None
            self.sg_ln = ln(w)
        if "sum" in nodes:
            self.sum_out = nn.Linear(din, w, bias=bias) if din != w else None
            self.sum_ln = ln(w)
        if "efc" in nodes:
            self.efc, self.efc_ln = nn.Linear(nin, r, bias=bias), ln(r)
        if "attn" in nodes:
            self.attn_rows, self.attn_rows_ln = nn.Linear(nin, r, bias=bias), ln(r)
            self.attn = nn.MultiheadAttention(EMBED_DIM, ATTN_HEADS, batch_first=True)
            self.attn_ln1, self.attn_ln2 = nn.LayerNorm(EMBED_DIM), nn.LayerNorm(EMBED_DIM)
            self.attn_ffn1, self.attn_ffn2 = nn.Linear(EMBED_DIM, EMBED_DIM), nn.Linear(EMBED_DIM, EMBED_DIM)
        self.interact = nn.Linear(w, INTERACT_ROWS * EMBED_DIM, bias=bias)
        self.interact_ln = ln(INTERACT_ROWS * EMBED_DIM)
        self.fm, self.fm_ln = nn.Linear(EMBED_DIM, w, bias=bias), ln(w)

    # --- gathering the selected inputs ------------------------------------------------------------
    def _dense_input(self, dense: list[torch.Tensor], idx: Sequence[int]) -> tuple[torch.Tensor, list[Segment]]:
        chosen = sorted(set(idx))
        segments = [(self.dense_offsets[j], dense[j].shape[1]) for j in chosen]
        x = dense[chosen[0]] if len(chosen) == 1 else torch.cat([dense[j] for j in chosen], dim=1)
        return x, segments

    def _sparse_input(self, sparse: list[SparseAct], idx: Sequence[int]) -> tuple[torch.Tensor, list[Segment]]:
        pieces, segments = [], []
        for j in sorted(set(idx)):
            pieces.append(sparse[j].main)
            segments.append((self.sparse_offsets[j], sparse[j].main.shape[1]))
            if sparse[j].extra is not None:
                pieces.append(sparse[j].extra)
                segments.append((self.sparse_offsets[j] + self.r, INTERACT_ROWS))
        return (pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)), segments

    # --- operators ---------------------------------------------------------------------------------
    def forward(
        self, dense: list[torch.Tensor], sparse: list[SparseAct], block: Block, mask: bool
    ) -> tuple[torch.Tensor, SparseAct]:
        d, sd = block.dense_dim, block.sparse_dim
        n_dense, n_sparse = (self.w, self.r) if mask else (d, sd)
        outs = [
            self._dense_op(self.space.nodes[k], dense, sparse, block, n_dense) for k in block.dense_nodes(self.space)
        ]
        dense_out = outs[0] if len(outs) == 1 else torch.stack(outs).sum(0)
        rows = [self._sparse_op(self.space.nodes[k], sparse, block, n_sparse) for k in block.sparse_nodes(self.space)]
        sparse_out = rows[0] if len(rows) == 1 else torch.stack(rows).sum(0)
        if mask:
            dense_out, sparse_out = self._mask_cols(dense_out, d), self._mask_rows(sparse_out, sd)
        extra = None
        if block.interact:
            y = layer_norm(
                seg_linear(dense_out, self.interact, [(0, dense_out.shape[1])], INTERACT_ROWS * EMBED_DIM),
                self.interact_ln,
            )
            extra = y.view(-1, INTERACT_ROWS, EMBED_DIM)
        if block.deep_fm:
            fm = layer_norm(seg_linear(fm_vector(sparse_out), self.fm, [(0, EMBED_DIM)], n_dense), self.fm_ln)
            dense_out = dense_out + (self._mask_cols(fm, d) if mask else fm)
        return dense_out, SparseAct(sparse_out, extra)

    @staticmethod
    def _mask_cols(x: torch.Tensor, d: int) -> torch.Tensor:
        return x if x.shape[-1] == d else torch.cat([x[..., :d], x.new_zeros(*x.shape[:-1], x.shape[-1] - d)], -1)

    @staticmethod
    def _mask_rows(s: torch.Tensor, r: int) -> torch.Tensor:
        return s if s.shape[1] == r else torch.cat([s[:, :r], s.new_zeros(s.shape[0], s.shape[1] - r, s.shape[2])], 1)

    def _dense_op(
        self, op: str, dense: list[torch.Tensor], sparse: list[SparseAct], block: Block, n: int
    ) -> torch.Tensor:
        if op == "fc":
            x, segs = self._dense_input(dense, block.dense_idx)
            return _relu(layer_norm(seg_linear(x, self.fc, segs, n), self.fc_ln))
        if op == "dp":
            x, segs = self._dense_input(dense, block.dense_idx)
            v = layer_norm(seg_linear(x, self.dp_dense, segs, EMBED_DIM), self.dp_dense_ln) if self.dp_dense else x
            s, rsegs = self._sparse_input(sparse, block.sparse_idx)
            if self.dp_rows is not None:
                s = layer_norm(row_linear(s, self.dp_rows, rsegs, self.p), self.dp_rows_ln).transpose(1, 2)
            t = torch.cat([v.unsqueeze(1), s], dim=1)
            y = pairwise_dots(t)
            return layer_norm(seg_linear(y, self.dp_out, [(0, y.shape[1])], n), self.dp_ln)
        left, right = dense[block.dense_left_idx], dense[block.dense_right_idx]
        lseg = (self.dense_offsets[block.dense_left_idx], left.shape[1])
        rseg = (self.dense_offsets[block.dense_right_idx], right.shape[1])
        if op == "sg":  # only the gate entries facing right's live columns matter (the rest multiply zeros)
            _note(self.sg_gate.weight, rseg, [lseg])
            _note(self.sg_gate.bias, rseg)
            gate_w = self.sg_gate.weight[rseg[0] : rseg[0] + rseg[1], lseg[0] : lseg[0] + lseg[1]]
            gate = torch.sigmoid(F.linear(left, gate_w, self.sg_gate.bias[rseg[0] : rseg[0] + rseg[1]]))
            x, segs = gate * right, [rseg]
            y = seg_linear(x, self.sg_out, segs, n) if self.sg_out is not None else self._place(x, rseg, n)
            return layer_norm(y, self.sg_ln)
        if op == "sum":
            if block.dense_left_idx == block.dense_right_idx:
                x, segs = left + right, [lseg]
            else:
                x, segs = torch.cat([left, right], dim=1), [lseg, rseg]
            y = seg_linear(x, self.sum_out, segs, n) if self.sum_out is not None else self._place_sum(x, segs, n)
            return layer_norm(y, self.sum_ln)
        raise ValueError(f"{op!r} is not a dense operator")

    @staticmethod
    def _place(x: torch.Tensor, seg: Segment, n: int) -> torch.Tensor:
        """Columns of a segment written into their positions of an n-wide output (no projection)."""
        out = x.new_zeros(x.shape[0], max(n, seg[0] + seg[1]))
        out[:, seg[0] : seg[0] + seg[1]] = x
        return out[:, :n]

    def _place_sum(self, x: torch.Tensor, segs: list[Segment], n: int) -> torch.Tensor:
        widths = [w for _, w in segs]
        parts = torch.split(x, widths, dim=1)
        return sum(self._place(p, s, n) for p, s in zip(parts, segs, strict=True))

    def _sparse_op(self, op: str, sparse: list[SparseAct], block: Block, n: int) -> torch.Tensor:
        s, segs = self._sparse_input(sparse, block.sparse_idx)
        if op == "efc":
            return _relu(layer_norm(row_linear(s, self.efc, segs, n), self.efc_ln)).transpose(1, 2)
        if op == "attn":
            y = layer_norm(row_linear(s, self.attn_rows, segs, n), self.attn_rows_ln).transpose(1, 2)
            y = self._mask_rows(y, block.sparse_dim) if n != block.sparse_dim else y
            usage = _USAGE.get()
            if usage is not None:
                for module in (self.attn, self.attn_ln1, self.attn_ln2, self.attn_ffn1, self.attn_ffn2):
                    usage.note_module(module)
            h = self.attn_ln1(y + self.attn(y, y, y, need_weights=False)[0])
            out = self.attn_ln2(h + self.attn_ffn2(_relu(self.attn_ffn1(h))))
            return self._mask_rows(out, block.sparse_dim) if n != block.sparse_dim else out
        raise ValueError(f"{op!r} is not a sparse operator")


class SuperNet(nn.Module):
    """Stem, ``num_blocks`` choice blocks and the head (on the last block), for one search space."""

    def __init__(
        self,
        space: SearchSpace,
        num_dense: int,
        table_sizes: Sequence[int],
        num_blocks: int = 7,
        use_layernorm: bool = True,
        weight_sharing: str = "slice",
    ) -> None:
        super().__init__()
        if weight_sharing not in ("slice", "mask"):
            raise ValueError(f"weight_sharing must be 'slice' or 'mask', got {weight_sharing!r}")
        self.space, self.num_blocks, self.mask = space, num_blocks, weight_sharing == "mask"
        self.num_dense, self.num_sparse = num_dense, len(table_sizes)
        self.stem = Stem(table_sizes)
        self.blocks = nn.ModuleList(
            SuperBlock(b, space, num_dense, self.num_sparse, use_layernorm) for b in range(num_blocks)
        )
        self.head_width = space.max_dense + (space.max_sparse + INTERACT_ROWS) * EMBED_DIM
        self.head = nn.Linear(self.head_width, 1)
        init_weights(self)

    def forward(self, dense: torch.Tensor, sparse_ids: torch.Tensor, path: Path) -> torch.Tensor:
        """Logits [B] of the subnet ``path`` using the shared weights."""
        return self.head_logits(*self.body(dense, sparse_ids, path))

    def body(self, dense: torch.Tensor, sparse_ids: torch.Tensor, path: Path) -> tuple[torch.Tensor, list[Segment]]:
        """The head's input for ``path`` and where its columns sit in the head's full input."""
        if path.num_blocks != self.num_blocks or path.space != self.space:
            raise ValueError(f"path has {path.num_blocks} blocks of {path.space.name}; supernet is {self.num_blocks}")
        dense_acts = [dense]
        sparse_acts = [SparseAct(self.stem(sparse_ids), None)]
        for block_module, block in zip(self.blocks, path.blocks, strict=True):
            d, s = block_module(dense_acts, sparse_acts, block, self.mask)
            dense_acts.append(d)
            sparse_acts.append(s)
        last_dense, last_sparse = dense_acts[-1], sparse_acts[-1]
        pieces = [last_dense, last_sparse.main.flatten(1)]
        segs = [(0, last_dense.shape[1]), (self.space.max_dense, last_sparse.main.shape[1] * EMBED_DIM)]
        if last_sparse.extra is not None:
            pieces.append(last_sparse.extra.flatten(1))
            segs.append((self.space.max_dense + self.space.max_sparse * EMBED_DIM, INTERACT_ROWS * EMBED_DIM))
        return torch.cat(pieces, dim=1), segs

    def head_logits(self, features: torch.Tensor, segments: list[Segment]) -> torch.Tensor:
        return seg_linear(features, self.head, segments, 1).squeeze(1)


class PathModel(nn.Module):
    """One subnet of a supernet as an ordinary model ``(dense, ids) -> logits``, sharing its weights."""

    def __init__(self, supernet: SuperNet, path: Path) -> None:
        super().__init__()
        self.supernet, self.path = supernet, path

    def forward(self, dense: torch.Tensor, sparse_ids: torch.Tensor) -> torch.Tensor:
        return self.supernet(dense, sparse_ids, self.path)
