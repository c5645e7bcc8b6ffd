"""How reliable is the correlation study's ground truth, and what would make it so? (Issue 17.)

For each synthetic data size in ``--rows`` (the demo's spec from ``config/config.yaml``, other rows)
it trains the study's first ``--subnets`` subnets with ``--seeds`` seeds each, exactly as the rules
``train_subnet``/``train_subnet_seed`` do (the config's ground-truth training, ``--epochs`` passes at
most), and prints the seed-pair Spearman of the subnets' test log losses with its bootstrap
interval, ICC(1), the architectures' and the seeds' SDs, the mean test log loss against the
teacher's (Bayes) log loss, the seconds per training as a ratio to the first size's, and the subnet
whose seeds disagree most, with their test log losses. The study needs a seed-pair Spearman of
``correlation.min_reliability`` (0.8) before any claim is decided.

``--dense-widths`` / ``--sparse-widths`` replace the space's width choices (default: the config's
``space_widths``), to see how much of the architectures' spread the narrow choices make;
``--adagrad-eps`` replaces the training's Adagrad eps (default: the config's ``final.adagrad_eps``),
to see how much of the seeds' spread the first steps' damping makes; ``--embedding-l2`` its
embedding L2 weight (default: the ground truth's, ``correlation.embedding_l2``).

    python bench/ground_truth.py [--rows 100000 500000] [--epochs E] [--subnets 8] [--seeds 2]
                                 [--dense-widths 16 32 64 128] [--sparse-widths 16 32] [--adagrad-eps E]
                                 [--embedding-l2 L]
                                 [--procs 2] [--workdir /tmp/sigeo-bench-truth]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from sigeo.config import DatasetSettings, load_config, load_settings
from sigeo.data.prepare import prepare
from sigeo.data.synthetic import generate
from sigeo.io import TrainingOutputs
from sigeo.space.choice import get_space
from sigeo.study.correlation import subnet, train_subnet, training_seed, truth_settings
from sigeo.study.stats import reliability

ROOT = Path(__file__).resolve().parents[1]


def demo_settings() -> DatasetSettings:
    """The shipped config's first data set (the synthetic demo)."""
    settings = load_settings(ROOT / "config" / "config.yaml")
    return next(iter(settings.datasets.values()))


def make_data(demo: DatasetSettings, rows: int, folder: Path) -> Path:
    """The demo's synthetic data with ``rows`` rows, prepared as the workflow prepares it (kept)."""
    data = folder / "data"
    if not (data / "meta.json").exists():
        spec = demo.spec
        raw = folder / "raw" / spec.raw_format.file_name
        generate(spec.raw_format, replace(spec.synthetic, rows=rows), raw, spec.max_table_size)
        prepare(spec.raw_format, raw, data, demo.prepare, teacher_prob_path=raw.parent / "teacher_prob.npy")
    return data


def train_one(job: tuple[Path, int, int, int | None, dict, dict, Path]) -> tuple[int, int, float, float]:
    """One ground-truth training (subnet ``index`` of the space with ``widths``, training seed ``seed``,
    ``recipe``: Adagrad's eps and the embedding L2 weight): its test log loss (NaN when it diverged)
    and seconds."""
    data, index, seed, epochs, widths, recipe, out = job
    torch.set_num_threads(1)
    demo = demo_settings()
    space = load_config(ROOT / "config" / "config.yaml")["spaces"][0]
    arch = subnet(space, demo.num_blocks, demo.subnet_seed, index, widths)
    truth = replace(training_seed(truth_settings(demo.truth, epochs, None), seed), **recipe)
    started = time.perf_counter()
    metrics = train_subnet(arch, data, truth, TrainingOutputs.in_folder(out), torch.device("cpu"))
    test = (metrics.get("test") or {}).get("logloss")
    return index, seed, float("nan") if test is None else test, time.perf_counter() - started


def measure(data: Path, args: argparse.Namespace, widths: dict, recipe: dict, runs: Path) -> tuple[np.ndarray, float]:
    """The (subnets × seeds) test log losses and the mean seconds per training."""
    jobs = [
        (data, i, s, args.epochs, widths, recipe, runs / f"{i}" / f"seed{s}")
        for i in range(args.subnets)
        for s in range(args.seeds)
    ]
    losses = np.full((args.subnets, args.seeds), np.nan)
    seconds = []
    with ProcessPoolExecutor(args.procs) as pool:
        for index, seed, loss, took in pool.map(train_one, jobs):
            losses[index, seed] = loss
            seconds.append(took)
    return losses, float(np.mean(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=None, help="synthetic rows (default: the demo's)")
    parser.add_argument("--epochs", type=int, default=None, help="passes at most (default: correlation.epochs)")
    parser.add_argument("--subnets", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--dense-widths", type=int, nargs="+", default=None, help="default: the config's")
    parser.add_argument("--sparse-widths", type=int, nargs="+", default=None, help="default: the config's")
    parser.add_argument("--adagrad-eps", type=float, default=None, help="default: the config's final.adagrad_eps")
    parser.add_argument("--embedding-l2", type=float, default=None, help="default: the ground truth's")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sigeo-bench-truth"))
    args = parser.parse_args()
    demo = demo_settings()
    sizes = args.rows or [demo.spec.synthetic.rows]
    epochs = args.epochs if args.epochs is not None else demo.truth.max_epochs
    space = get_space(load_config(ROOT / "config" / "config.yaml")["spaces"][0], demo.space_widths)
    widths = {
        "dense": args.dense_widths or list(space.dense_dims),
        "sparse": args.sparse_widths or list(space.sparse_dims),
    }
    eps = args.adagrad_eps if args.adagrad_eps is not None else demo.truth.adagrad_eps
    l2 = args.embedding_l2 if args.embedding_l2 is not None else demo.truth.embedding_l2
    recipe = {"adagrad_eps": eps, "embedding_l2": l2}
    print(f"{args.subnets} subnets x {args.seeds} seeds of the demo space (widths {widths}), up to {epochs} epochs "
          f"each, Adagrad eps {eps:g}, embedding L2 {l2:g}", flush=True)  # fmt: skip
    first_seconds = None
    for rows in sizes:
        folder = args.workdir / f"rows{rows}"
        data = make_data(demo, rows, folder)
        bayes = json.loads((data / "meta.json").read_text())["bayes_logloss"]["test"]
        tag = "-".join(str(w) for w in widths["dense"]) + "_" + "-".join(str(w) for w in widths["sparse"])
        losses, seconds = measure(data, args, widths, recipe, folder / f"runs-e{epochs}-{tag}-eps{eps:g}-l2{l2:g}")
        first_seconds = first_seconds or seconds
        converged = np.flatnonzero(np.isfinite(losses).all(axis=1))
        finite = losses[converged]
        noise = reliability(finite, seed=demo.subnet_seed)
        low, high = noise.spearman_ci
        print(
            f"{rows:,} rows: seed-pair Spearman {noise.spearman:.3f} [{low:.2f}, {high:.2f}], "
            f"ICC(1) {noise.icc1:.3f}, SD between architectures {noise.sd_between:.4f}, between seeds "
            f"{noise.sd_within:.4f}; mean test log loss {np.nanmean(losses):.4f} (Bayes {bayes:.4f}); "
            f"{seconds:.1f} s per training ({seconds / first_seconds:.2f}x the first size); "
            f"{len(losses) - len(finite)} subnets diverged",
            flush=True,
        )
        if converged.size:
            widest = converged[int(np.argmax(np.ptp(finite, axis=1)))]
            print(f"  the seeds' widest disagreement: subnet {widest}, test log loss "
                  + " / ".join(f"{loss:.4f}" for loss in losses[widest]), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
