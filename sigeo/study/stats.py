"""Rank correlation of a proxy with the ground truth (test loss), with a paired bootstrap interval.

Two sign conventions: *raw* correlates the proxy's value with the test loss as they are (what the
paper's theory table reports: training loss positive, Fisher–Rao negative); *direction-adjusted*
correlates the proxy's goodness (its value if higher is better, else its negation) with −test loss,
so a useful proxy is positive whichever way it points (what the search tables report).

The ground truth's own reliability (:func:`reliability`) bounds what any proxy can reach: the same
architectures trained with other seeds must rank alike, or the ranking being predicted is noise.
Differences between two correlations (:func:`paired_difference`) resample the same subnets for both,
so the noise they share cancels instead of widening the interval.

The claims the summaries print are worded by :func:`claim_rises`, :func:`claim_beats` and
:func:`claim_positive`, so both studies say the same thing the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

NAN_INTERVAL = (float("nan"), float("nan"))
BOOTSTRAP_ELEMENTS = 2**22  # values of a pairwise statistic held at once: 32 MiB of float64


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman ρ and Kendall τ-b over ``n`` finite pairs (``dropped`` had a NaN/inf), with intervals."""

    spearman: float
    kendall: float
    spearman_ci: tuple[float, float]
    kendall_ci: tuple[float, float]
    n: int
    dropped: int


def rank_correlation(
    proxy: Sequence[float] | np.ndarray,
    test_loss: Sequence[float] | np.ndarray,
    *,
    higher_is_better: bool = True,
    raw: bool = False,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RankCorrelation:
    """Spearman and Kendall of ``proxy`` against ``test_loss`` (raw or direction-adjusted, see module).

    Pairs where either value is NaN/inf are dropped and counted. The interval is a seeded paired
    percentile bootstrap (``n_resamples=0`` skips it); fewer than 3 pairs or constant input give NaN.
    """
    x = np.asarray(proxy, dtype=float)
    y = np.asarray(test_loss, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"proxy and test_loss must be 1-D of equal length, got {x.shape} and {y.shape}")
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if not raw:
        x, y = (x if higher_is_better else -x), -y
    n = int(x.size)
    nan = float("nan")
    if n < 3:
        return RankCorrelation(nan, nan, NAN_INTERVAL, NAN_INTERVAL, n, int((~finite).sum()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        rho, tau = float(spearman_last_axis(x, y)), float(kendall_last_axis(x, y))
    rho_ci = _row_interval(lambda i: spearman_last_axis(x[i], y[i]), n, n_resamples, confidence, seed)
    tau_ci = _row_interval(lambda i: kendall_last_axis(x[i], y[i]), n, n_resamples, confidence, seed)
    return RankCorrelation(rho, tau, rho_ci, tau_ci, n, int((~finite).sum()))


def correlation_frame(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    target: str = "test_loss",
    by: str | None = None,
    higher_is_better: Mapping[str, bool] | None = None,
    raw: bool = False,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (group of ``by``, column): its :class:`RankCorrelation` against ``target``.

    ``higher_is_better`` gives each column's direction (needed unless ``raw``).
    """
    groups = frame.groupby(by, sort=True) if by else [(None, frame)]
    rows = []
    for key, group in groups:
        for column in columns:
            direction = True if raw else higher_is_better[column]
            result = rank_correlation(
                group[column].to_numpy(),
                group[target].to_numpy(),
                higher_is_better=direction,
                raw=raw,
                n_resamples=n_resamples,
                seed=seed,
            )
            rows.append(
                {
                    **({by: key} if by else {}),
                    "statistic": column,
                    "spearman": result.spearman,
                    "spearman_low": result.spearman_ci[0],
                    "spearman_high": result.spearman_ci[1],
                    "kendall": result.kendall,
                    "kendall_low": result.kendall_ci[0],
                    "kendall_high": result.kendall_ci[1],
                    "n": result.n,
                    "dropped": result.dropped,
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Reliability:
    """How well seeds reproduce the ground truth, over ``subnets`` architectures trained with ``seeds`` seeds each.

    ``spearman``/``kendall``: mean rank correlation between two seeds' test losses over every pair of
    seeds (the noise ceiling a proxy's ρ can be read against), with a bootstrap interval over subnets.
    ``icc1``: ICC(1), one-way random effects, (MSB − MSW) / (MSB + (k − 1) MSW): the share of one run's
    variance that is the architecture's. ``sd_between``: the architectures' SD, √((MSB − MSW) / k)
    (0 when MSB ≤ MSW); ``sd_within``: the seeds' SD, √MSW.
    """

    spearman: float
    spearman_ci: tuple[float, float]
    kendall: float
    kendall_ci: tuple[float, float]
    icc1: float
    sd_between: float
    sd_within: float
    subnets: int
    seeds: int


def spearman_last_axis(x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
    """Spearman ρ along the last axis (Pearson's r of the ranks), so a whole batch of bootstrap
    resamples, shape (resamples, n), is one call; NaN where either side is constant."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rho = stats.pearsonr(stats.rankdata(x, axis=-1), stats.rankdata(y, axis=-1), axis=-1).statistic
    return float(rho) if np.ndim(rho) == 0 else rho


def kendall_last_axis(x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
    """Kendall τ-b along the last axis, (C − D) / √((P − Tx)(P − Ty)) over the P pairs of positions, Tx
    and Ty the pairs tied in x and in y (scipy's τ-b); NaN where either side is constant.

    Counting signs over every pair costs O(n²) per row, but it takes a whole (resamples, n) batch of
    bootstrap resamples at once, where scipy's O(n log n) ``kendalltau`` is called once per resample.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    first, second = np.triu_indices(x.shape[-1], k=1)
    sx, sy = np.sign(x[..., first] - x[..., second]), np.sign(y[..., first] - y[..., second])
    untied = np.count_nonzero(sx, axis=-1) * np.count_nonzero(sy, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.where(untied > 0, np.sum(sx * sy, axis=-1) / np.sqrt(untied), np.nan)
    return float(tau) if np.ndim(tau) == 0 else tau


def _mean_pairwise(correlation: Callable, matrix: np.ndarray) -> np.ndarray | float:
    """Mean of ``correlation`` over every pair of seeds (the last axis of ``matrix``)."""
    pairs = combinations(range(matrix.shape[-1]), 2)
    return np.mean([correlation(matrix[..., a], matrix[..., b]) for a, b in pairs], axis=0)


def bootstrap_rows(
    statistic: Callable[[np.ndarray], np.ndarray | float],
    n: int,
    *,
    n_resamples: int,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``statistic`` of all ``n`` rows and its percentile interval over resampled rows.

    ``statistic`` takes row indices: everything measured on one row (a subnet's scores at every level,
    its test loss) is resampled together, which is what makes a bootstrap *paired*. It also takes a
    (resamples, n) batch of indices and returns one value per resample.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        estimate = float(statistic(np.arange(n)))
    return (estimate, *_row_interval(statistic, n, n_resamples, confidence, seed))


def _row_interval(statistic: Callable, n: int, n_resamples: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap of ``statistic(rows)`` over resampled row indices (rows move together).

    Resamples go to ``statistic`` in batches of at most ``BOOTSTRAP_ELEMENTS / n²`` rows, which bounds
    the memory of a statistic over pairs of rows (:func:`kendall_last_axis`) whatever ``n``.
    """
    if not n_resamples:
        return NAN_INTERVAL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (np.arange(n),),
            lambda i, axis=-1: statistic(i),  # indices resample on the last axis
            vectorized=True,
            n_resamples=n_resamples,
            batch=max(1, BOOTSTRAP_ELEMENTS // (n * n)),
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def reliability(
    matrix: Sequence[Sequence[float]] | np.ndarray, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Reliability:
    """Seed-to-seed agreement of a (subnets × seeds) matrix of test losses; every value must be finite.

    Fewer than 3 subnets or 2 seeds leave every statistic NaN (nothing to compare).
    """
    y = np.asarray(matrix, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"reliability needs a (subnets × seeds) matrix, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("reliability: the matrix holds NaN/inf; leave diverged runs out before measuring")
    n, k = y.shape
    nan = float("nan")
    if n < 3 or k < 2:
        return Reliability(nan, NAN_INTERVAL, nan, NAN_INTERVAL, nan, nan, nan, n, k)
    msb = k * float(np.var(y.mean(axis=1), ddof=1))
    msw = float(np.mean(np.var(y, axis=1, ddof=1)))
    icc1 = (msb - msw) / (msb + (k - 1) * msw) if msb + (k - 1) * msw > 0 else nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rho, tau = float(_mean_pairwise(spearman_last_axis, y)), float(_mean_pairwise(kendall_last_axis, y))
    return Reliability(
        spearman=rho,
        spearman_ci=_row_interval(lambda i: _mean_pairwise(spearman_last_axis, y[i]), n, n_resamples, confidence, seed),
        kendall=tau,
        kendall_ci=_row_interval(lambda i: _mean_pairwise(kendall_last_axis, y[i]), n, n_resamples, confidence, seed),
        icc1=icc1,
        sd_between=float(np.sqrt(max(msb - msw, 0.0) / k)),
        sd_within=float(np.sqrt(msw)),
        subnets=n,
        seeds=k,
    )


@dataclass(frozen=True)
class Difference:
    """ρ(a, target) − ρ(b, target) over ``n`` subnets where all three are finite, with its paired interval."""

    estimate: float
    low: float
    high: float
    n: int


def paired_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    target: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Difference:
    """Spearman of ``a`` with ``target`` minus that of ``b``, by a paired bootstrap over subnets.

    Each resample draws subnets once and computes both ρs on them, so the comparison carries only the
    noise that differs between the two. Pass goodness (direction-adjusted) values and ``−loss`` as the
    target to compare direction-adjusted ρs. Subnets with a NaN/inf anywhere are left out.
    """
    x, z, y = (np.asarray(v, dtype=float) for v in (a, b, target))
    if not x.shape == z.shape == y.shape or x.ndim != 1:
        raise ValueError(f"a, b and target must be 1-D of equal length, got {x.shape}, {z.shape} and {y.shape}")
    finite = np.isfinite(x) & np.isfinite(z) & np.isfinite(y)
    x, z, y = x[finite], z[finite], y[finite]
    n = int(x.size)
    if n < 3:
        return Difference(float("nan"), float("nan"), float("nan"), n)

    def difference(i: np.ndarray) -> np.ndarray | float:
        return spearman_last_axis(x[i], y[i]) - spearman_last_axis(z[i], y[i])

    return Difference(*bootstrap_rows(difference, n, n_resamples=n_resamples, confidence=confidence, seed=seed), n)


# --- the claims' wording, shared by the RecSys and the theory study ---------------------------------
def claim_rises(name: str, high_level: str, low_level: str) -> str:
    return f"{name}'s ρ at {high_level} exceeds its ρ at {low_level}"


def claim_beats(name: str, other: str, level: str) -> str:
    return f"{name}'s ρ exceeds {other}'s at {level}"


def claim_positive(name: str, level: str) -> str:
    return f"{name}'s ρ at {level} is above 0"
