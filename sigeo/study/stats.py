"""Rank correlation of a proxy with the ground truth (test loss), with a paired bootstrap interval.

Two sign conventions: *raw* correlates the proxy's value with the test loss as they are (what the
paper's theory table reports: training loss positive, Fisher–Rao negative); *direction-adjusted*
correlates the proxy's goodness (its value if higher is better, else its negation) with −test loss,
so a useful proxy is positive whichever way it points (what the search tables report).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

NAN_INTERVAL = (float("nan"), float("nan"))


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman ρ and Kendall τ-b over ``n`` finite pairs (``dropped`` had a NaN/inf), with intervals."""

    spearman: float
    kendall: float
    spearman_ci: tuple[float, float]
    kendall_ci: tuple[float, float]
    n: int
    dropped: int


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.spearmanr(x, y).statistic)


def _kendall(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.kendalltau(x, y).statistic)


def _interval(statistic, x: np.ndarray, y: np.ndarray, n_resamples: int, confidence: float, seed: int):
    result = stats.bootstrap(
        (x, y),
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


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
        rho, tau = _spearman(x, y), _kendall(x, y)
        rho_ci = _interval(_spearman, x, y, n_resamples, confidence, seed) if n_resamples else NAN_INTERVAL
        tau_ci = _interval(_kendall, x, y, n_resamples, confidence, seed) if n_resamples else NAN_INTERVAL
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
