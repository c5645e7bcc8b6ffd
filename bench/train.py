"""Training throughput and memory at the paper's Criteo scale (issue: supernet and training).

1. Supernet warm-up, NASRec-Small, layer norm on, batch 512, the paper's Criteo table sizes
   (540 M embedding parameters): samples/s for full-path steps (what short warm-ups mostly run)
   and for sampled paths (the ``default`` strategy), with the achieved FLOP/s as a fraction of a
   plain ``torch.matmul`` measured in the same process, and peak RSS against the bytes of the
   parameters plus the Adagrad state.
2. The same step with dense embedding gradients — the reference's behaviour, which updates all
   540 M embedding parameters every step — as the baseline measured in the same run.
3. Final training of the NASRec-Small Criteo architecture (config/nasrec) on 1 M synthetic rows.

    python bench/train.py [--steps 20] [--workdir /tmp/sigeo-bench]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from sigeo.data.formats import CRITEO_TABLE_SIZES, get_format
from sigeo.space.choice import SMALL, full_path
from sigeo.space.sampler import PathSampler
from sigeo.space.supernet import SuperNet
from sigeo.train import clip_grad_norm, logloss, make_optimizer

ROOT = Path(__file__).resolve().parents[1]
BATCH = 512


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def matmul_gflops(seconds: float = 3.0) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.matmul(a, b)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.matmul(a, b)
        n += 1
    return n * 2 * 2048**3 / (time.perf_counter() - start) / 1e9


def random_batch(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    dense = torch.from_numpy(np.log1p(rng.exponential(5.0, (BATCH, 13))).astype(np.float32))
    ids = torch.from_numpy(np.stack([rng.integers(0, n, BATCH) for n in CRITEO_TABLE_SIZES], axis=1))
    label = torch.from_numpy((rng.random(BATCH) < 0.25).astype(np.float32))
    return dense, ids, label


def step_flops(net: SuperNet, path, batch) -> float:
    """Forward + backward FLOPs of one step, counted once outside the timed loop."""
    with FlopCounterMode(display=False) as counter:
        logloss(net(batch[0], batch[1], path), batch[2]).backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def time_steps(net: SuperNet, optimizer, paths, batches) -> float:
    params = [p for p in net.parameters() if p.requires_grad]
    start = time.perf_counter()
    for path, batch in zip(paths, batches, strict=True):
        optimizer.zero_grad(set_to_none=True)
        logloss(net(batch[0], batch[1], path), batch[2]).backward()
        clip_grad_norm(params)
        optimizer.step()
    return time.perf_counter() - start


def bench_supernet(steps: int, matmul: float) -> tuple[SuperNet, list]:
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    start = time.perf_counter()
    net = SuperNet(SMALL, 13, CRITEO_TABLE_SIZES, use_layernorm=True)
    built = time.perf_counter() - start
    optimizer = make_optimizer(net, 0.01)
    n_params = sum(p.numel() for p in net.parameters())
    state_bytes = 2 * n_params * 4  # weights + Adagrad sum of squares, float32
    print(f"supernet: {n_params / 1e6:.0f} M parameters ({net.stem.embedding.weight.numel() / 1e6:.0f} M embedding), "
          f"built and initialised in {built:.1f} s")  # fmt: skip
    batches = [random_batch(rng) for _ in range(steps + 2)]
    sampler = PathSampler(SMALL, 7, "default", "binomial-0.5", 0, seed=1)
    for label, paths in (
        ("full path", [full_path(SMALL, 7)] * (steps + 2)),
        ("sampled paths (default strategy)", [sampler.sample() for _ in range(steps + 2)]),
    ):
        time_steps(net, optimizer, paths[:2], batches[:2])  # warm-up: allocator, Adagrad state pages
        seconds = time_steps(net, optimizer, paths[2:], batches[2:])
        flops = np.mean([step_flops(net, p, b) for p, b in zip(paths[2:5], batches[2:5], strict=True)])
        rate = steps * BATCH / seconds
        achieved = flops * steps / seconds / 1e9
        print(f"  {label:34s} {rate:8.0f} samples/s ({seconds / steps:.3f} s/step), {achieved:6.1f} GFLOP/s = "
              f"{achieved / matmul:.0%} of matmul")  # fmt: skip
    rss = peak_rss_gb()
    print(f"  peak RSS {rss:.2f} GB = {rss * 2**30 / state_bytes:.2f} x (parameters + Adagrad state, "
          f"{state_bytes / 2**30:.2f} GB)")  # fmt: skip
    return net, batches


def bench_dense_baseline(net: SuperNet, batches, steps: int) -> float:
    """The reference's step: dense embedding gradients, so Adagrad touches every embedding row."""
    net.stem.embedding.sparse = False
    optimizer = make_optimizer(net, 0.01)
    path = full_path(SMALL, 7)
    time_steps(net, optimizer, [path], batches[:1])
    n = max(2, steps // 5)
    seconds = time_steps(net, optimizer, [path] * n, batches[1 : n + 1])
    net.stem.embedding.sparse = True
    return n * BATCH / seconds


def bench_final(workdir: Path, steps: int) -> None:
    from sigeo.config import load_settings
    from sigeo.data.prepare import prepare
    from sigeo.data.store import Dataset
    from sigeo.data.synthetic import generate
    from sigeo.final import build_standalone
    from sigeo.space.choice import Architecture
    from sigeo.train import to_device

    synthetic = {"rows": 1_000_000, "seed": 1, "max_vocab": 200_000}
    config = {"seed": 1, "datasets": {"criteo": {"format": "criteo", "source": "synthetic", "synthetic": synthetic}}}
    settings = load_settings(config).datasets["criteo"]  # the paper's table sizes: no max_table_size
    raw = workdir / "criteo-1000000" / "train.txt"
    if not raw.exists():
        generate(get_format("criteo"), settings.spec.synthetic, raw)
    data = workdir / "criteo-1000000-paper-tables"
    if not (data / "meta.json").exists():
        prepare(get_format("criteo"), raw, data, settings.prepare)
    dataset = Dataset.open(data)
    arch = Architecture.load(ROOT / "config" / "nasrec" / "ea_criteo_kaggle_autoctr_best_1shot.json")
    model = build_standalone(arch, dataset, seed=1)
    optimizer = make_optimizer(model, 0.1)
    params = list(model.parameters())
    train = dataset.split("train")
    cpu = torch.device("cpu")
    n = 0
    start = None
    for i, raw_batch in enumerate(train.batches(BATCH, drop_last=True)):
        if i == 3:
            start = time.perf_counter()
        if i == steps * 5 + 3:
            break
        batch = to_device(raw_batch, cpu)
        optimizer.zero_grad(set_to_none=True)
        logloss(model(batch[0], batch[1]), batch[2]).backward()
        clip_grad_norm(params)
        optimizer.step()
        n += BATCH if start is not None else 0
    seconds = time.perf_counter() - start
    print(f"final training, NASRec-Small Criteo, 1 M synthetic rows, paper table sizes: "
          f"{n / seconds:,.0f} samples/s over {n:,} samples")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sigeo-bench"))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    matmul = matmul_gflops()
    print(f"plain torch.matmul (2048 x 2048, float32): {matmul:.1f} GFLOP/s")
    net, batches = bench_supernet(args.steps, matmul)
    baseline = bench_dense_baseline(net, batches, args.steps)
    print(f"  baseline, dense embedding updates (the reference's step): {baseline:.0f} samples/s; "
          f"the reference itself measured 53 samples/s here")  # fmt: skip
    del net, batches
    bench_final(args.workdir, args.steps)
    print("targets: warm-up >= 5x the reference (>= 265 samples/s); peak RSS <= 1.3 x (parameters + Adagrad state)")


if __name__ == "__main__":
    main()
