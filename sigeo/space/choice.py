"""The NASRec search space: architecture choices, their JSON form, hash, sampling and mutation.

A *path* through the supernet picks, for each of the blocks, which earlier outputs feed it
(macro) and which operators at which widths it runs (micro) (docs/reference.md §2.2–2.4). During warm-up a
path may activate several operators per block (any-path); a searchable architecture is the
special case with exactly one dense and one sparse operator per block. Both are an :class:`Architecture`
(``is_architecture`` tells them apart): the supernet, the sampler and the search treat them alike.
JSON keeps the reference's field names and list order, so its published files load and write back
unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

DENSE_DIMS = (16, 32, 64, 128, 256, 512, 768, 1024)
SPARSE_DIMS = (16, 32, 48, 64)
MAX_INPUTS = 4  # at most four inputs per list (the count functions of docs/reference.md §3.1)


@dataclass(frozen=True)
class SearchSpace:
    """NASRec-Small ("autoctr") or NASRec-Full ("xlarge"): operators and their kinds."""

    name: str
    reference_name: str
    nodes: tuple[str, ...]
    dense_nodes: tuple[int, ...]
    sparse_nodes: tuple[int, ...]
    dense_dims: tuple[int, ...] = DENSE_DIMS
    sparse_dims: tuple[int, ...] = SPARSE_DIMS

    def with_widths(self, dense: Sequence[int], sparse: Sequence[int]) -> SearchSpace:
        """The same operators with other width choices (a smaller space trains and searches faster)."""
        for kind, dims in (("dense", dense), ("sparse", sparse)):
            if not dims or any(int(d) < 1 for d in dims) or len(set(dims)) != len(dims):
                raise ValueError(f"space_widths.{kind}: needs distinct positive widths, got {list(dims)}")
        return replace(
            self, dense_dims=tuple(sorted(int(d) for d in dense)), sparse_dims=tuple(sorted(int(d) for d in sparse))
        )

    @property
    def paper_widths(self) -> bool:
        return self.dense_dims == DENSE_DIMS and self.sparse_dims == SPARSE_DIMS

    @property
    def max_dense(self) -> int:
        return max(self.dense_dims)

    @property
    def max_sparse(self) -> int:
        return max(self.sparse_dims)


SMALL = SearchSpace("small", "autoctr", ("fc", "dp", "efc"), (0, 1), (2,))
FULL = SearchSpace("full", "xlarge", ("fc", "dp", "sg", "sum", "attn", "efc"), (0, 1, 2, 3), (4, 5))
SPACES = {SMALL.name: SMALL, FULL.name: FULL}
_BY_REFERENCE_NAME = {s.reference_name: s for s in SPACES.values()}


def get_space(name: str, widths: Mapping[str, Sequence[int]] | None = None) -> SearchSpace:
    """A space by our name (small/full) or the reference's (autoctr/xlarge).

    ``widths`` is the config's ``space_widths`` (``{"dense": [...], "sparse": [...]}``); None keeps
    the paper's width choices.
    """
    space = SPACES.get(name) or _BY_REFERENCE_NAME.get(name)
    if space is None:
        raise ValueError(f"unknown search space {name!r}; expected one of {sorted(SPACES)}")
    if widths is None:
        return space
    if set(widths) != {"dense", "sparse"}:
        raise ValueError(f"space_widths: needs exactly the keys dense and sparse, got {sorted(widths)}")
    return space.with_widths(widths["dense"], widths["sparse"])


@dataclass(frozen=True)
class Block:
    """One block's macro (inputs) and micro (operators, widths, mergers) choice.

    Index lists keep the order they were drawn in (as the reference's JSON does); the model always
    concatenates inputs in ascending index order.
    """

    dense_idx: tuple[int, ...]
    sparse_idx: tuple[int, ...]
    dense_left_idx: int
    dense_right_idx: int
    active_nodes: tuple[int, ...]
    dense_dim: int
    sparse_dim: int
    interact: bool
    deep_fm: bool

    def dense_nodes(self, space: SearchSpace) -> tuple[int, ...]:
        return tuple(n for n in self.active_nodes if n in space.dense_nodes)

    def sparse_nodes(self, space: SearchSpace) -> tuple[int, ...]:
        return tuple(n for n in self.active_nodes if n in space.sparse_nodes)

    def uses(self, space: SearchSpace, op: str) -> bool:
        return space.nodes.index(op) in self.active_nodes if op in space.nodes else False


@dataclass(frozen=True)
class Architecture:
    """A choice for every block of a supernet.

    A searchable architecture when it is single-path (``is_architecture``); during warm-up the same
    type carries any-path and full-path choices, which the supernet runs alike.
    """

    space: SearchSpace
    blocks: tuple[Block, ...]

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def live_blocks(self) -> tuple[bool, ...]:
        """Which blocks reach the head, directly or through later blocks that read their outputs.

        The others change neither the logits nor any gradient, so a forward pass may skip them.
        """
        needed, live = {self.num_blocks}, [False] * self.num_blocks  # the head reads the last block
        for b in reversed(range(self.num_blocks)):
            if b + 1 not in needed:
                continue
            live[b] = True
            block = self.blocks[b]
            for op in (self.space.nodes[k] for k in block.active_nodes):
                if op in ("fc", "dp"):
                    needed.update(block.dense_idx)
                if op in ("sg", "sum"):
                    needed.update((block.dense_left_idx, block.dense_right_idx))
                if op in ("dp", "efc", "attn"):
                    needed.update(block.sparse_idx)
        return tuple(live)

    def is_architecture(self) -> bool:
        """Exactly one dense and one sparse operator per block (what search and export handle)."""
        return all(len(b.dense_nodes(self.space)) == 1 and len(b.sparse_nodes(self.space)) == 1 for b in self.blocks)

    def validate(self) -> Architecture:
        """Raise ValueError if any index, node or width is outside the space."""
        s = self.space
        for b, block in enumerate(self.blocks):
            for idx in (*block.dense_idx, *block.sparse_idx, block.dense_left_idx, block.dense_right_idx):
                if not 0 <= idx <= b:
                    raise ValueError(f"block {b}: input index {idx} outside 0..{b}")
            if not block.dense_idx or not block.sparse_idx:
                raise ValueError(f"block {b}: needs at least one dense and one sparse input")
            if not block.dense_nodes(s) or not block.sparse_nodes(s):
                raise ValueError(f"block {b}: needs at least one dense and one sparse operator")
            if any(n not in range(len(s.nodes)) for n in block.active_nodes):
                raise ValueError(f"block {b}: unknown node in {block.active_nodes}")
            if block.dense_dim not in s.dense_dims or block.sparse_dim not in s.sparse_dims:
                raise ValueError(f"block {b}: widths {block.dense_dim}/{block.sparse_dim} outside the space")
        return self

    # --- JSON (docs/reference.md §2.8) -----------------------------------------------------------------
    def to_dict(self, score: float | None = None) -> dict[str, Any]:
        """The reference's JSON layout; ``score`` becomes its ``test_loss`` field (the search criterion)."""
        out: dict[str, Any] = {
            "micro": [
                {
                    "active_nodes": list(b.active_nodes),
                    "dense_in_dims": b.dense_dim,
                    "sparse_in_dims": b.sparse_dim,
                    "dense_sparse_interact": int(b.interact),
                    "deep_fm": int(b.deep_fm),
                }
                for b in self.blocks
            ],
            "macro": [
                {
                    "dense_idx": list(b.dense_idx),
                    "sparse_idx": list(b.sparse_idx),
                    "dense_left_idx": [b.dense_left_idx],
                    "dense_right_idx": [b.dense_right_idx],
                }
                for b in self.blocks
            ],
            "num_blocks": self.num_blocks,
            "use_layernorm": 1,
            "config": self.space.reference_name,
        }
        if not self.space.paper_widths:  # a reduced space names its widths; the reference's files never do
            out["space_widths"] = {"dense": list(self.space.dense_dims), "sparse": list(self.space.sparse_dims)}
        out["test_loss"] = score
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        space = get_space(data["config"], data.get("space_widths"))
        if len(data["micro"]) != len(data["macro"]) or len(data["micro"]) != data.get("num_blocks", len(data["micro"])):
            raise ValueError("micro, macro and num_blocks disagree")
        blocks = tuple(
            Block(
                dense_idx=tuple(int(i) for i in ma["dense_idx"]),
                sparse_idx=tuple(int(i) for i in ma["sparse_idx"]),
                dense_left_idx=int(ma["dense_left_idx"][0]),
                dense_right_idx=int(ma["dense_right_idx"][0]),
                active_nodes=tuple(sorted(int(n) for n in mi["active_nodes"])),
                dense_dim=int(mi["dense_in_dims"]),
                sparse_dim=int(mi["sparse_in_dims"]),
                interact=bool(mi["dense_sparse_interact"]),
                deep_fm=bool(mi["deep_fm"]),
            )
            for mi, ma in zip(data["micro"], data["macro"], strict=True)
        )
        return cls(space, blocks).validate()

    def to_json(self) -> str:
        """Compact JSON of the choice alone (for records)."""
        out = self.to_dict()
        del out["test_loss"]
        return json.dumps(out)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Architecture:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"{path}: not a valid architecture JSON: {exc}") from exc

    # --- hash (the reference's tokenizer, docs/reference.md §4.2) --------------------------------------
    def hash(self) -> str:
        """Digits of multi-hot/one-hot encodings of every choice: equal iff the choices are equal."""
        n, s = self.num_blocks, self.space
        digits: list[int] = []

        def multi_hot(indices, length):
            v = [0] * length
            for i in indices:
                v[i] = 1
            return v

        for b in self.blocks:
            for idx in (b.dense_idx, b.sparse_idx, (b.dense_left_idx,), (b.dense_right_idx,)):
                digits += multi_hot(idx, n)
        for b in self.blocks:
            digits += multi_hot(b.active_nodes, len(s.nodes))
            digits += [s.dense_dims.index(b.dense_dim), s.sparse_dims.index(b.sparse_dim)]
            digits += multi_hot((int(b.interact),), 2) + multi_hot((int(b.deep_fm),), 2)
        return "".join(str(d) for d in digits)


# --- sampling (docs/reference.md §3.1) -----------------------------------------------------------------
def count(rng: np.random.Generator, n: int, rule: str) -> int:
    """How many inputs/operators an any-path block takes out of ``n`` candidates."""
    if rule == "uniform":
        return 1 + int(rng.integers(min(n, MAX_INPUTS)))
    if rule == "binomial-0.5":
        return 1 + int(rng.binomial(min(n - 1, MAX_INPUTS - 1), 0.5))
    raise ValueError(f"unknown count rule {rule!r}; expected 'uniform' or 'binomial-0.5'")


def sample_macro(rng: np.random.Generator, b: int, mode: str, rule: str) -> dict[str, Any]:
    """Inputs of block ``b`` (candidates 0..b): ``single``, ``any`` or ``full``."""
    n = b + 1
    if mode == "full":
        return {"dense_idx": tuple(range(n)), "sparse_idx": tuple(range(n)), "dense_left_idx": b, "dense_right_idx": b}
    if mode == "single":
        k_dense = k_sparse = 1
    else:
        k_dense, k_sparse = count(rng, n, rule), count(rng, n, rule)
    return {
        "dense_idx": tuple(int(i) for i in rng.choice(n, k_dense, replace=False)),
        "sparse_idx": tuple(int(i) for i in rng.choice(n, k_sparse, replace=False)),
        "dense_left_idx": int(rng.integers(n)),
        "dense_right_idx": int(rng.integers(n)),
    }


def sample_micro(rng: np.random.Generator, space: SearchSpace, mode: str, rule: str) -> dict[str, Any]:
    """Operators and widths of one block: ``single``, ``any`` or ``full``."""
    if mode == "full":
        return {
            "active_nodes": tuple(sorted(space.dense_nodes + space.sparse_nodes)),
            "dense_dim": space.max_dense,
            "sparse_dim": space.max_sparse,
            "interact": True,
            "deep_fm": True,
        }
    if mode == "single":
        k_dense = k_sparse = 1
    else:
        k_dense, k_sparse = count(rng, len(space.dense_nodes), rule), count(rng, len(space.sparse_nodes), rule)
    dense = rng.choice(space.dense_nodes, k_dense, replace=False)
    sparse = rng.choice(space.sparse_nodes, k_sparse, replace=False)
    return {
        "active_nodes": tuple(sorted(int(i) for i in (*dense, *sparse))),
        "dense_dim": int(space.dense_dims[rng.integers(len(space.dense_dims))]),
        "sparse_dim": int(space.sparse_dims[rng.integers(len(space.sparse_dims))]),
        "interact": bool(rng.integers(2)),
        "deep_fm": bool(rng.integers(2)),
    }


def sample_block(
    rng: np.random.Generator, space: SearchSpace, b: int, macro: str, micro: str, rule: str = "uniform"
) -> Block:
    return Block(**sample_macro(rng, b, macro, rule), **sample_micro(rng, space, micro, rule))


def sample_path(
    rng: np.random.Generator, space: SearchSpace, num_blocks: int, macro: str, micro: str, rule: str = "uniform"
) -> Architecture:
    """A path through the supernet drawn with the given macro and micro modes (single, any or full)."""
    return Architecture(space, tuple(sample_block(rng, space, b, macro, micro, rule) for b in range(num_blocks)))


def sample_architecture(rng: np.random.Generator, space: SearchSpace, num_blocks: int) -> Architecture:
    """A search candidate: any-path inputs with the uniform count, single-path operators (docs/reference.md §3.1)."""
    return sample_path(rng, space, num_blocks, macro="any", micro="single", rule="uniform")


def full_path(space: SearchSpace, num_blocks: int) -> Architecture:
    """The widest choice: every input, every operator, maximum widths in every block.

    Named after the paper's "full path" (the config's ``full_path_*`` keys and the ``val_full_path``
    metrics), which warm-up mixes into its sampled paths.
    """
    rng = np.random.default_rng(0)  # unused by "full", which draws nothing
    return sample_path(rng, space, num_blocks, "full", "full")


# --- mutation (docs/reference.md §4.3) -----------------------------------------------------------------
_MACRO_KEYS = ("dense_idx", "sparse_idx", "dense_left_idx", "dense_right_idx")
_MICRO_KEYS = ("active_nodes", "dense_dim", "sparse_dim", "interact", "deep_fm")


def mutate(rng: np.random.Generator, arch: Architecture) -> Architecture:
    """One mutation: a random block gets ONE key of a freshly drawn macro (p=½) or micro choice."""
    b = int(rng.integers(arch.num_blocks))
    if rng.random() < 0.5:
        fresh = sample_macro(rng, b, "any", "uniform")
        key = _MACRO_KEYS[int(rng.integers(len(_MACRO_KEYS)))]
    else:
        fresh = sample_micro(rng, arch.space, "single", "uniform")
        key = _MICRO_KEYS[int(rng.integers(len(_MICRO_KEYS)))]
    blocks = list(arch.blocks)
    blocks[b] = replace(blocks[b], **{key: fresh[key]})
    return Architecture(arch.space, tuple(blocks))
