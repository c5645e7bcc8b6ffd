"""The NASRec weight-sharing supernet (docs/reference.md §2.5–2.6), built eagerly at maximum width.

Every layer is sized for the zero-padded concatenation of all of a block's candidate inputs, as in
the reference, but a forward pass only touches what the path selects: the selected inputs' live
columns (``Segment``s of the full input) and the leading rows of each weight up to the chosen width
("slice" mode), so compute scales with the subnet. "mask" mode instead computes every operator at
full width and zeroes the units beyond the chosen width, which is the reference's behaviour.

Both modes compute the same function. Two places need care for that: a LayerNorm over a
width-dependent axis takes its statistics over the full width, including the units the mask then
zeroes, so slicing computes that projection's every output unit (from the live inputs only) and
keeps the leading ones after normalising; and attention in the mask mode also attends to the
zeroed rows, which all project to the same key and value (the projection's biases), so slicing
adds that key once, weighted by the number of dead rows.

How a forward finds its weights: every layer reads a parameter through ``_take``, which by default
slices the shared supernet weight. A :class:`Candidate` runs this same code on its own copies: its
forward runs inside ``with reading_own_weights(...)``, under which ``_take`` returns the candidate's
copy of the region instead, and building it runs one forward inside ``with copying_read_weights()``,
which makes those copies. Likewise the ReLUs and the block loop append what the proxies need to the
lists of ``recording_relu_patterns`` and ``recording_layer_outputs``. The choice travels in context
variables rather than as arguments so that the blocks have one code path for the supernet, its
candidates and the proxies; context variables, unlike globals, keep concurrent scoring threads
apart. Outside all of these context managers a forward slices the supernet and records nothing.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from .choice import Architecture, Block, SearchSpace
from .ops import ATTN_HEADS, EMBED_DIM, INTERACT_ROWS, Stem, dp_rows, fm_vector, init_weights, pairwise_dots

Segment = tuple[int, int]  # (first column of the full concatenated input, number of columns)
Inputs = Callable[[], tuple[torch.Tensor, list[Segment]]]  # a block's selected inputs and their segments
Rows = tuple[int, int]  # (first row, number of rows)
T = TypeVar("T")


@dataclass(frozen=True)
class Region:
    """The elements of one parameter a subnet uses; by default all of them.

    A subnet of a weight-sharing supernet reads a leading row range and some column segments of
    each shared weight (``rows``, ``cols``), and a few rows of each embedding table (``index``,
    sorted). Measuring just those keeps a candidate's gradient record the size of the candidate.
    """

    param: nn.Parameter
    rows: Rows | None = None
    cols: tuple[Segment, ...] | None = None
    index: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        if self.index is not None:
            return (len(self.index), *self.param.shape[1:])
        shape = list(self.param.shape)
        if self.rows is not None:
            shape[0] = self.rows[1]
        if self.cols is not None:
            shape[1] = sum(n for _, n in self.cols)
        return tuple(shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def take(self, t: torch.Tensor) -> torch.Tensor:
        """The region of ``t`` (the parameter or a dense gradient), in its shape (a view where it can be)."""
        if self.index is not None:
            return t[self.index]
        if self.rows is not None:
            t = t[self.rows[0] : self.rows[0] + self.rows[1]]
        if self.cols is not None:
            t = _columns(t, self.cols)
        return t

    def select(self, t: torch.Tensor) -> torch.Tensor:
        """The region's elements of ``t`` (the parameter, or its gradient, dense or sparse), flattened."""
        if t.is_sparse:
            if self.index is not None:
                t = t.coalesce()
                out = t.new_zeros((len(self.index), *t.shape[1:]), layout=torch.strided)
                out[torch.searchsorted(self.index, t.indices()[0])] = t.values()
                return out.reshape(-1)
            t = t.to_dense()
        return self.take(t).reshape(-1)


# --- what a forward reads and records (see the module docstring) ---------------------------------
_RELU_PATTERNS: ContextVar[list[torch.Tensor] | None] = ContextVar("sigeo_relu_patterns", default=None)
_LAYER_OUTPUTS: ContextVar[list[tuple[torch.Tensor, ...]] | None] = ContextVar("sigeo_layer_outputs", default=None)
_OWN_WEIGHTS: ContextVar[_OwnWeights | None] = ContextVar("sigeo_candidate_weights", default=None)


@contextlib.contextmanager
def _setting(var: ContextVar[T], value: T) -> Iterator[T]:
    token = var.set(value)
    try:
        yield value
    finally:
        var.reset(token)


@contextlib.contextmanager
def recording_relu_patterns() -> Iterator[list[torch.Tensor]]:
    """Collect each ReLU's on/off pattern [B, units] from the forwards inside, in the order they run.

    NASWOT and SWAP need the activation codes of the network's own ReLUs (FC, EFC, the attention FFN
    of the blocks that reach the head); the list is empty if the forwards ran none.
    """
    with _setting(_RELU_PATTERNS, []) as patterns:
        yield patterns


@contextlib.contextmanager
def recording_layer_outputs() -> Iterator[list[tuple[torch.Tensor, ...]]]:
    """Collect each layer's outputs from the forwards inside, as the next layers read them (MeCo, AZ-NAS).

    First the network's input (dense features, looked-up embeddings [B, E, C]), then per live block
    its dense output [B, d], its sparse output [B, E, rows] and, with the dense-to-sparse merger, its
    extra rows. The tensors stay in the autograd graph, so a later layer can be differentiated with
    respect to them.
    """
    with _setting(_LAYER_OUTPUTS, []) as layers:
        yield layers


class _OwnWeights:
    """The tensors a candidate's forward reads instead of supernet regions, by id of the supernet parameter.

    Without ``tensors`` it is being built: each region read is copied once and kept.
    """

    def __init__(self, tensors: dict[int, torch.Tensor] | None = None) -> None:
        self.building = tensors is None
        self.tensors = tensors if tensors is not None else {}
        self.regions: dict[int, Region] = {}

    def read(self, region: Region) -> torch.Tensor:
        key = id(region.param)
        if self.building:
            if key in self.regions:
                raise ValueError("a candidate reads one parameter twice; it cannot own a single copy of it")
            self.regions[key] = region
            self.tensors[key] = region.take(region.param.detach()).clone()
        own = self.tensors[key]
        if own.shape != region.shape:
            raise ValueError(f"the candidate owns a {tuple(own.shape)} copy but reads a {region.shape} region")
        return own


@contextlib.contextmanager
def copying_read_weights() -> Iterator[_OwnWeights]:
    """Forwards inside copy each weight region they read (once) and compute on the copy.

    One forward of a dummy sample under this is how a :class:`Candidate` learns which regions its
    subnet reads and gets its own copies of them (``tensors`` and ``regions``, by id of the supernet
    parameter); the supernet's weights are only read.
    """
    with _setting(_OWN_WEIGHTS, _OwnWeights()) as own:
        yield own


@contextlib.contextmanager
def reading_own_weights(tensors: dict[int, torch.Tensor]) -> Iterator[None]:
    """Forwards inside read ``tensors`` (by id of the supernet parameter) instead of slicing the supernet.

    A :class:`Candidate` runs the supernet's own code under this, so its forward uses, and its
    backward fills gradients of, its own copies; the shared weights stay untouched.
    """
    with _setting(_OWN_WEIGHTS, _OwnWeights(tensors)):
        yield


def _take(param: nn.Parameter, rows: Rows | None = None, cols: Sequence[Segment] | None = None) -> torch.Tensor:
    """What a forward reads of ``param``: a slice of the shared weight, or the candidate's own copy of it."""
    region = Region(param, rows, tuple(cols) if cols is not None else None)
    own = _OWN_WEIGHTS.get()
    return region.take(param) if own is None else own.read(region)


def _relu(x: torch.Tensor) -> torch.Tensor:
    out = F.relu(x)
    patterns = _RELU_PATTERNS.get()
    if patterns is not None:
        patterns.append((out.detach() > 0).flatten(1))
    return out


@dataclass
class SparseAct:
    """A block's sparse output: the operator rows (logical rows 0..r) and the merger rows (R..R+8).

    Both are stored rows last, [B, E, rows], the layout the row-axis Linears read and write, so no
    operator transposes and copies its input (only the dot product and attention want rows first).
    """

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
    bias = _take(lin.bias, (0, n_out)) if lin.bias is not None else None
    return F.linear(x, _take(lin.weight, (0, n_out), segments), bias)


def layer_norm(x: torch.Tensor, ln: nn.LayerNorm | None) -> torch.Tensor:
    """LayerNorm over the last axis using the leading entries of ``ln``'s affine parameters."""
    if ln is None:
        return x
    n = x.shape[-1]
    return F.layer_norm(x, (n,), _take(ln.weight, (0, n)), _take(ln.bias, (0, n)), ln.eps)


def normed_width(ln: nn.LayerNorm | None, n: int) -> int:
    """How many output units a projection followed by ``ln`` computes when ``n`` are used.

    With layer norm all of them: the reference normalises the full-width output before masking it,
    so the units a subnet does not use still enter the mean and variance of those it does.
    """
    return n if ln is None else ln.normalized_shape[0]


def norm_leading(y: torch.Tensor, ln: nn.LayerNorm | None, n: int) -> torch.Tensor:
    """``ln`` over the last axis of ``y`` (``normed_width`` units), then the leading ``n`` units."""
    y = layer_norm(y, ln)
    return y if y.shape[-1] == n else y[..., :n]


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
            segments.append((self.sparse_offsets[j], sparse[j].main.shape[2]))
            if sparse[j].extra is not None:
                pieces.append(sparse[j].extra)
                segments.append((self.sparse_offsets[j] + self.r, INTERACT_ROWS))
        return (pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)), segments

    # --- operators ---------------------------------------------------------------------------------
    def forward(
        self, dense: list[torch.Tensor], sparse: list[SparseAct], block: Block, mask: bool
    ) -> tuple[torch.Tensor, SparseAct]:
        d, sd = block.dense_dim, block.sparse_dim
        n_dense, n_sparse = (self.w, self.r) if mask else (d, sd)
        # operators of a block that read the same selected inputs share one concatenation of them
        dense_input = functools.cache(lambda: self._dense_input(dense, block.dense_idx))
        sparse_input = functools.cache(lambda: self._sparse_input(sparse, block.sparse_idx))
        outs = [
            self._dense_op(self.space.nodes[k], dense, dense_input, sparse_input, block, n_dense)
            for k in block.dense_nodes(self.space)
        ]
        dense_out = functools.reduce(torch.add, outs)
        rows = [
            self._sparse_op(self.space.nodes[k], sparse_input, block, n_sparse) for k in block.sparse_nodes(self.space)
        ]
        sparse_out = functools.reduce(torch.add, rows)
        if mask:
            dense_out, sparse_out = self._mask_cols(dense_out, d), self._mask_cols(sparse_out, sd)
        extra = None
        if block.interact:
            y = layer_norm(
                seg_linear(dense_out, self.interact, [(0, dense_out.shape[1])], INTERACT_ROWS * EMBED_DIM),
                self.interact_ln,
            )
            extra = y.view(-1, INTERACT_ROWS, EMBED_DIM).transpose(1, 2)
        if block.deep_fm:
            fm_in = fm_vector(sparse_out.transpose(1, 2))
            fm_out = seg_linear(fm_in, self.fm, [(0, EMBED_DIM)], normed_width(self.fm_ln, n_dense))
            fm = norm_leading(fm_out, self.fm_ln, n_dense)
            dense_out = dense_out + (self._mask_cols(fm, d) if mask else fm)
        return dense_out, SparseAct(sparse_out, extra)

    @staticmethod
    def _mask_cols(x: torch.Tensor, d: int) -> torch.Tensor:
        return x if x.shape[-1] == d else torch.cat([x[..., :d], x.new_zeros(*x.shape[:-1], x.shape[-1] - d)], -1)

    @staticmethod
    def _mask_rows(s: torch.Tensor, r: int) -> torch.Tensor:
        return s if s.shape[1] == r else torch.cat([s[:, :r], s.new_zeros(s.shape[0], s.shape[1] - r, s.shape[2])], 1)

    def _dense_op(
        self, op: str, dense: list[torch.Tensor], dense_input: Inputs, sparse_input: Inputs, block: Block, n: int
    ) -> torch.Tensor:
        if op == "fc":
            x, segs = dense_input()
            return _relu(norm_leading(seg_linear(x, self.fc, segs, normed_width(self.fc_ln, n)), self.fc_ln, n))
        if op == "dp":
            x, segs = dense_input()
            v = layer_norm(seg_linear(x, self.dp_dense, segs, EMBED_DIM), self.dp_dense_ln) if self.dp_dense else x
            s, rsegs = sparse_input()
            if self.dp_rows is not None:
                s = layer_norm(seg_linear(s, self.dp_rows, rsegs, self.p), self.dp_rows_ln)
            t = torch.cat([v.unsqueeze(1), s.transpose(1, 2)], dim=1)
            y = pairwise_dots(t)
            out = seg_linear(y, self.dp_out, [(0, y.shape[1])], normed_width(self.dp_ln, n))
            return norm_leading(out, self.dp_ln, n)
        left, right = dense[block.dense_left_idx], dense[block.dense_right_idx]
        lseg = (self.dense_offsets[block.dense_left_idx], left.shape[1])
        rseg = (self.dense_offsets[block.dense_right_idx], right.shape[1])
        if op == "sg":  # only the gate entries facing right's live columns matter (the rest multiply zeros)
            gate = torch.sigmoid(
                F.linear(left, _take(self.sg_gate.weight, rseg, [lseg]), _take(self.sg_gate.bias, rseg))
            )
            x, segs, m = gate * right, [rseg], normed_width(self.sg_ln, n)
            y = seg_linear(x, self.sg_out, segs, m) if self.sg_out is not None else self._place(x, rseg, m)
            return norm_leading(y, self.sg_ln, n)
        if op == "sum":
            if block.dense_left_idx == block.dense_right_idx:
                x, segs = left + right, [lseg]
            else:
                x, segs = torch.cat([left, right], dim=1), [lseg, rseg]
            m = normed_width(self.sum_ln, n)
            y = seg_linear(x, self.sum_out, segs, m) if self.sum_out is not None else self._place_sum(x, segs, m)
            return norm_leading(y, self.sum_ln, n)
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

    def _sparse_op(self, op: str, sparse_input: Inputs, block: Block, n: int) -> torch.Tensor:
        s, segs = sparse_input()
        if op == "efc":
            return _relu(norm_leading(seg_linear(s, self.efc, segs, normed_width(self.efc_ln, n)), self.efc_ln, n))
        if op == "attn":  # attention runs rows first, [B, rows, E]
            m = normed_width(self.attn_rows_ln, n)
            y = norm_leading(seg_linear(s, self.attn_rows, segs, m), self.attn_rows_ln, n).transpose(1, 2)
            y = self._mask_rows(y, block.sparse_dim) if n != block.sparse_dim else y
            out = self._attention(y, self.r - n)
            return (self._mask_rows(out, block.sparse_dim) if n != block.sparse_dim else out).transpose(1, 2)
        raise ValueError(f"{op!r} is not a sparse operator")

    def _attention(self, y: torch.Tensor, dead: int) -> torch.Tensor:
        """The transformer layer on [B, rows, E], in functional ops on ``_take``-n weights.

        ``dead`` rows beyond ``y``'s are all-zero rows the layer also attends to, as the reference's
        masked supernet does: each projects to the key and value biases, so they enter the softmax as
        one extra key whose weight is multiplied by ``dead`` (log(dead) added to its logit). Their own
        outputs are masked away, so they need no query. Written out rather than calling the modules
        with swapped-in weights, so that candidates scored concurrently in threads never swap
        parameters of a module they share.
        """
        attn, (batch, rows, _) = self.attn, y.shape
        in_bias = _take(attn.in_proj_bias)
        heads = (ATTN_HEADS, EMBED_DIM // ATTN_HEADS)
        q, k, v = F.linear(y, _take(attn.in_proj_weight), in_bias).view(batch, rows, 3, *heads).permute(2, 0, 3, 1, 4)
        logit_bias = None
        if dead:
            _, k_dead, v_dead = in_bias.view(3, 1, heads[0], 1, heads[1])
            k = torch.cat([k, k_dead.expand(batch, -1, -1, -1)], dim=2)
            v = torch.cat([v, v_dead.expand(batch, -1, -1, -1)], dim=2)
            logit_bias = F.pad(y.new_zeros(1, rows), (0, 1), value=math.log(dead))
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=logit_bias).transpose(1, 2).reshape(y.shape)
        mixed = F.linear(mixed, _take(attn.out_proj.weight), _take(attn.out_proj.bias))
        h = layer_norm(y + mixed, self.attn_ln1)
        ffn = F.linear(_relu(F.linear(h, _take(self.attn_ffn1.weight), _take(self.attn_ffn1.bias))),
                       _take(self.attn_ffn2.weight), _take(self.attn_ffn2.bias))  # fmt: skip
        return layer_norm(h + ffn, self.attn_ln2)


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

    def forward(self, dense: torch.Tensor, sparse_ids: torch.Tensor, path: Architecture) -> torch.Tensor:
        """Logits [B] of the subnet ``path`` using the shared weights."""
        return self.logits(dense, self.stem(sparse_ids), path)

    def logits(self, dense: torch.Tensor, embedded: torch.Tensor, path: Architecture) -> torch.Tensor:
        """Logits of ``path`` from the dense features and the stem's output ``embedded`` [B, C, 16].

        Blocks that do not reach the head (``Architecture.live_blocks``) are skipped: they would change
        neither the logits nor any gradient.
        """
        x, segs = self.head_input(dense, embedded, path)
        return seg_linear(x, self.head, segs, 1).squeeze(1)

    def head_input(
        self, dense: torch.Tensor, embedded: torch.Tensor, path: Architecture
    ) -> tuple[torch.Tensor, list[Segment]]:
        """What the head of ``path`` reads: the last block's outputs [B, n] and their segments of the head's input.

        Everything before the head, so a caller that trains only the head can compute it once per batch.
        """
        if path.num_blocks != self.num_blocks or path.space != self.space:
            raise ValueError(f"path has {path.num_blocks} blocks of {path.space.name}; supernet is {self.num_blocks}")
        # one entry per output index; None for the blocks skipped as dead
        dense_acts, sparse_acts = [dense], [SparseAct(embedded.transpose(1, 2).contiguous(), None)]
        layers = _LAYER_OUTPUTS.get()
        if layers is not None:
            layers.append((dense, sparse_acts[0].main))
        for block_module, block, live in zip(self.blocks, path.blocks, path.live_blocks(), strict=True):
            d, s = block_module(dense_acts, sparse_acts, block, self.mask) if live else (None, None)
            dense_acts.append(d)
            sparse_acts.append(s)
            if layers is not None and live:
                layers.append((d, s.main) if s.extra is None else (d, s.main, s.extra))
        last_dense, last_sparse = dense_acts[-1], sparse_acts[-1]
        rows = last_sparse.main.shape[2]
        pieces = [last_dense, last_sparse.main.transpose(1, 2).flatten(1)]  # the head reads rows first
        segs = [(0, last_dense.shape[1]), (self.space.max_dense, rows * EMBED_DIM)]
        if last_sparse.extra is not None:
            pieces.append(last_sparse.extra.transpose(1, 2).flatten(1))
            segs.append((self.space.max_dense + self.space.max_sparse * EMBED_DIM, INTERACT_ROWS * EMBED_DIM))
        return torch.cat(pieces, dim=1), segs


class OwnRows(nn.Module):
    """A candidate's embedding lookups, from its own copy of some rows of the supernet's tables."""

    def __init__(self, stem: Stem, rows: torch.Tensor) -> None:
        super().__init__()
        self.region = Region(stem.embedding.weight, index=rows)
        self.register_buffer("offsets", stem.offsets.clone(), persistent=False)
        self.register_buffer("rows", rows, persistent=False)
        self.weight = nn.Parameter(self.region.take(stem.embedding.weight.detach()))
        ends = torch.tensor([*stem.table_offsets, sum(stem.table_sizes)], device=rows.device)
        self.table_bounds = torch.searchsorted(rows, ends).tolist()  # table f: own rows bounds[f]..bounds[f+1]

    def tables(self) -> dict[int, Region]:
        """Each feature table's rows of the own copy (rows are sorted, so a table's are contiguous),
        for the tables that have any."""
        bounds = self.table_bounds
        return {
            f: Region(self.weight, rows=(lo, hi - lo))
            for f, (lo, hi) in enumerate(itertools.pairwise(bounds))
            if hi > lo
        }

    def forward(self, sparse_ids: torch.Tensor) -> torch.Tensor:
        wanted = sparse_ids + self.offsets
        position = torch.searchsorted(self.rows, wanted).clamp_(max=len(self.rows) - 1)
        if not torch.equal(self.rows[position], wanted):
            raise ValueError("ids outside the embedding rows this candidate was built with")
        return F.embedding(position, self.weight)


class Candidate(nn.Module):
    """One subnet of a supernet as its own small model ``(dense, ids) -> logits``.

    It owns copies of exactly the weight regions the subnet reads, made by one forward pass of a
    dummy sample, and runs the supernet's own code on them. So a backward pass fills gradients the
    size of the subnet (never a full-size gradient of a shared 1024×6157 weight), no forward slices
    the shared weights again, and nothing done to the candidate (an optimizer step, SynFlow's |θ|)
    touches the supernet. With ``rows`` (sorted global rows of the stem's tables) it also owns those
    embedding rows and refuses other ids; without, it reads the shared tables, which stay frozen.
    """

    def __init__(self, supernet: SuperNet, path: Architecture, rows: torch.Tensor | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "supernet", supernet)  # not a submodule: its parameters are not the candidate's
        self.path = path
        device = supernet.head.weight.device
        dense = torch.zeros(1, supernet.num_dense, device=device)
        ids = torch.zeros(1, supernet.num_sparse, dtype=torch.long, device=device)
        with torch.no_grad(), copying_read_weights() as own:
            supernet(dense, ids, path)
        self.stem = OwnRows(supernet.stem, rows) if rows is not None else None
        self.regions: dict[str, Region] = {}  # in the supernet's parameter order
        self._owned: list[tuple[str, int]] = []  # (own attribute, id of the supernet parameter)
        for name, param in supernet.named_parameters():
            if param is supernet.stem.embedding.weight and self.stem is not None:
                self.regions[name] = self.stem.region
            elif id(param) in own.tensors:
                self.regions[name] = own.regions[id(param)]
                self.register_parameter(name.replace(".", "/"), nn.Parameter(own.tensors[id(param)]))
                self._owned.append((name.replace(".", "/"), id(param)))

    def measured(self) -> dict[str, nn.Parameter]:
        """The candidate's parameters under the names of the supernet parameters they copy."""
        return {
            name: self.stem.weight if name == "stem.embedding.weight" else getattr(self, name.replace(".", "/"))
            for name in self.regions
        }

    def probed(self) -> dict[str, nn.Parameter | Region]:
        """:meth:`measured` with the own embedding rows split into one group per feature table.

        The supernet keeps all tables in one parameter for speed; the reference has one embedding
        module per feature. Statistics taken per parameter (ZiCo's log per parameter) must see one
        group per table, whatever the storage, or 26 Criteo tables would count as one layer.
        """
        groups: dict[str, nn.Parameter | Region] = {}
        for name, param in self.measured().items():
            if self.stem is not None and param is self.stem.weight:
                groups.update({f"stem.tables.{f}.weight": region for f, region in self.stem.tables().items()})
            else:
                groups[name] = param
        return groups

    def forward(self, dense: torch.Tensor, sparse_ids: torch.Tensor) -> torch.Tensor:
        embedded = self.stem(sparse_ids) if self.stem is not None else self.supernet.stem(sparse_ids)
        with reading_own_weights({key: getattr(self, attr) for attr, key in self._owned}):
            return self.supernet.logits(dense, embedded, self.path)

    def head_input(self, dense: torch.Tensor, sparse_ids: torch.Tensor) -> torch.Tensor:
        """The head's input [B, n] (see :meth:`SuperNet.head_input`): ``forward`` is ``head.weight`` and
        ``head.bias`` (the candidate's own parameters under those names) applied to it."""
        embedded = self.stem(sparse_ids) if self.stem is not None else self.supernet.stem(sparse_ids)
        with reading_own_weights({key: getattr(self, attr) for attr, key in self._owned}):
            return self.supernet.head_input(dense, embedded, self.path)[0]
