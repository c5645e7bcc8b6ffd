"""Slice versus mask weight sharing: do they compute the same function, and what does each cost?

1. Per operator of both spaces (every block runs it, at widths below the maximum), layer norm on
   and off: the largest relative difference max|slice − mask| / max|mask| of the logits over a few
   random paths, in float32, at the paper's widths and Criteo's feature counts.
2. FLOPs and seconds per training step (forward + backward) of each mode on paths of the
   ``default`` warm-up strategy, layer norm on and off.

    python bench/weight_sharing.py [--blocks 7] [--batch 512] [--paths 4] [--steps 6]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from sigeo.space.choice import FULL, SMALL, Architecture, SearchSpace, sample_path
from sigeo.space.sampler import PathSampler
from sigeo.space.supernet import SuperNet

NUM_DENSE, TABLES = 13, [1000] * 26


def twins(space: SearchSpace, blocks: int, use_layernorm: bool) -> tuple[SuperNet, SuperNet]:
    """Slicing and masking supernets with the same random weights (LayerNorm affine and biases included)."""
    torch.manual_seed(0)
    sliced = SuperNet(space, NUM_DENSE, TABLES, blocks, use_layernorm=use_layernorm)
    with torch.no_grad():
        for p in sliced.parameters():
            p.normal_(0, 0.05)
    masked = SuperNet(space, NUM_DENSE, TABLES, blocks, use_layernorm=use_layernorm, weight_sharing="mask")
    masked.load_state_dict(sliced.state_dict())
    return sliced, masked


def operator_path(rng: np.random.Generator, space: SearchSpace, op: str, blocks: int) -> Architecture:
    """A random any-path path whose every block runs ``op`` below the maximum widths."""
    k = space.nodes.index(op)
    others = space.sparse_nodes if k in space.dense_nodes else space.dense_nodes
    path = sample_path(rng, space, blocks, "any", "any", "binomial-0.5")
    return Architecture(space, tuple(
        replace(b, active_nodes=tuple(sorted((k, int(rng.choice(others))))),
                dense_dim=int(rng.choice(space.dense_dims[:-1])), sparse_dim=int(rng.choice(space.sparse_dims[:-1])))
        for b in path.blocks
    ))  # fmt: skip


def batch(rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    dense = torch.from_numpy(rng.standard_normal((size, NUM_DENSE)).astype(np.float32))
    return dense, torch.from_numpy(rng.integers(0, TABLES[0], (size, len(TABLES))))


def differences(blocks: int, size: int, paths: int) -> None:
    print(f"max relative difference of the logits, slice vs mask ({blocks} blocks, batch {size}, {paths} paths each)")
    print(f"  {'space':6s} {'operator':8s} {'layer norm off':>15s} {'layer norm on':>15s}")
    rng = np.random.default_rng(1)
    dense, ids = batch(rng, size)
    for space in (SMALL, FULL):
        nets = {ln: twins(space, blocks, ln) for ln in (False, True)}
        for op in space.nodes:
            row = []
            for ln in (False, True):
                worst = 0.0
                for _ in range(paths):
                    path = operator_path(rng, space, op, blocks)
                    with torch.no_grad():
                        s, m = (net(dense, ids, path) for net in nets[ln])
                    worst = max(worst, float((s - m).abs().max() / m.abs().max()))
                row.append(worst)
            print(f"  {space.name:6s} {op:8s} {row[0]:15.1e} {row[1]:15.1e}")


def step_seconds(
    net: SuperNet, paths: list[Architecture], data: tuple[torch.Tensor, torch.Tensor], repeats: int = 3
) -> float:
    """Mean seconds per step over ``paths``, the fastest of ``repeats`` rounds (others' load only adds time)."""
    net(*data, paths[0]).square().mean().backward()  # warm-up: allocator
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for path in paths:
            net.zero_grad(set_to_none=True)
            net(*data, path).square().mean().backward()
        best = min(best, (time.perf_counter() - start) / len(paths))
    return best


def step_gflops(net: SuperNet, paths: list[Architecture], data: tuple[torch.Tensor, torch.Tensor]) -> float:
    with FlopCounterMode(display=False) as counter:
        for path in paths:
            net(*data, path).square().mean().backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(paths) / 1e9


def speed(blocks: int, size: int, steps: int) -> None:
    print(f"cost per forward + backward, default-strategy paths ({blocks} blocks, batch {size}, {steps} steps, "
          f"{torch.get_num_threads()} threads, fastest of 3 rounds)")  # fmt: skip
    print(f"  {'space':6s} {'layer norm':10s} {'GFLOP slice':>12s} {'mask':>8s} {'s slice':>8s} {'mask':>8s}")
    data = batch(np.random.default_rng(2), size)
    for space in (SMALL, FULL):
        sampler = PathSampler(space, blocks, "default", "binomial-0.5", 0, seed=3)
        paths = [sampler.sample() for _ in range(steps)]
        for ln in (False, True):
            sliced, masked = twins(space, blocks, ln)
            flops = [step_gflops(net, paths, data) for net in (sliced, masked)]
            seconds = [step_seconds(net, paths, data) for net in (sliced, masked)]
            print(f"  {space.name:6s} {'on' if ln else 'off':10s} {flops[0]:12.2f} {flops[1]:8.2f} "
                  f"{seconds[0]:8.3f} {seconds[1]:8.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--paths", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    differences(args.blocks, 64, args.paths)
    speed(args.blocks, args.batch, args.steps)


if __name__ == "__main__":
    main()
