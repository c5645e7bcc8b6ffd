"""The correlation table's statistics: batched bootstrap intervals against one scipy call per resample.

A correlation table holds, for every proxy at every warm-up level, Spearman's ρ and Kendall's τ with
paired-bootstrap intervals, and the ground truth's seed-to-seed agreement with its own. This times
that work on random scores of the demo's shape (``--proxies`` × ``--levels`` columns over
``--subnets`` subnets, ``--repeated`` of them with two seeds, ``--resamples`` resamples) twice: with
:mod:`sigeo.study.stats` (each statistic over a whole batch of resamples in one call) and with the
baseline of scipy's ``bootstrap(..., vectorized=False)`` calling ``spearmanr``/``kendalltau`` once
per resample. Both draw the same resamples, so it also prints the largest difference between their
interval ends (it must be rounding, around 1e-16).

    python bench/correlation_stats.py [--subnets 32] [--repeated 16] [--proxies 15] [--levels 3] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy import stats

from sigeo.study.stats import rank_correlation, reliability


def per_resample_interval(statistic, x: np.ndarray, y: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """The baseline: scipy's paired percentile bootstrap, ``statistic`` called once per resample."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (x, y),
            statistic,
            paired=True,
            vectorized=False,
            n_resamples=resamples,
            confidence_level=0.95,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.spearmanr(x, y).statistic)


def kendall(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.kendalltau(x, y).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subnets", type=int, default=32)
    parser.add_argument("--repeated", type=int, default=16)
    parser.add_argument("--proxies", type=int, default=15)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    loss = rng.normal(size=args.subnets)
    scores = [loss + rng.normal(scale=2.0, size=args.subnets) for _ in range(args.proxies * args.levels)]
    seeds = np.stack([loss[: args.repeated], loss[: args.repeated] + rng.normal(size=args.repeated)], axis=1)

    started = time.perf_counter()
    batched = [rank_correlation(s, loss, raw=True, n_resamples=args.resamples, seed=1) for s in scores]
    noise = reliability(seeds, n_resamples=args.resamples, seed=1)
    ours = time.perf_counter() - started

    started = time.perf_counter()
    baseline = [
        (
            per_resample_interval(spearman, s, loss, args.resamples, 1),
            per_resample_interval(kendall, s, loss, args.resamples, 1),
        )
        for s in scores
    ]
    baseline_noise = (
        per_resample_interval(spearman, seeds[:, 0], seeds[:, 1], args.resamples, 1),
        per_resample_interval(kendall, seeds[:, 0], seeds[:, 1], args.resamples, 1),
    )
    theirs = time.perf_counter() - started

    pairs = [((*r.spearman_ci, *r.kendall_ci), (*rho, *tau)) for r, (rho, tau) in zip(batched, baseline, strict=True)]
    pairs.append(((*noise.spearman_ci, *noise.kendall_ci), (*baseline_noise[0], *baseline_noise[1])))
    gap = max(abs(a - b) for ends, others in pairs for a, b in zip(ends, others, strict=True))
    columns = len(scores)
    print(
        f"{columns} columns × {args.subnets} subnets and a {args.repeated} × 2 seed matrix, {args.resamples} resamples"
    )
    print(f"batched (sigeo.study.stats): {ours:.2f} s")
    print(f"one scipy call per resample: {theirs:.2f} s")
    print(f"speed-up: {theirs / ours:.1f}x; largest difference between interval ends: {gap:.1e}")


if __name__ == "__main__":
    main()
