"""Rank statistics against scipy on fixed vectors: ties, the direction flip, NaN dropping, intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sigeo.study.stats import correlation_frame, rank_correlation

# ties in both vectors; 20 pairs
PROXY = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4], dtype=float)
LOSS = np.array([0.9, 0.7, 0.5, 0.7, 0.4, 0.2, 0.8, 0.6, 0.5, 0.5, 0.3, 0.2, 0.1, 0.3, 0.4, 0.6, 0.9, 0.8, 0.1, 0.5])


def test_hand_computed_small_case():
    """x = 1..5, y = (2, 1, 3, 5, 4): Σd² = 1+1+0+1+1 = 4 → ρ = 1 − 6·4/(5·24) = 0.8;
    pairs: 10, discordant (1,2) and (4,5) → τ = (8 − 2)/10 = 0.6."""
    result = rank_correlation([1, 2, 3, 4, 5], [2, 1, 3, 5, 4], raw=True, n_resamples=0)
    assert result.spearman == pytest.approx(0.8) and result.kendall == pytest.approx(0.6)
    assert result.n == 5 and result.dropped == 0 and all(math.isnan(v) for v in result.spearman_ci)


def test_raw_matches_scipy_with_ties():
    result = rank_correlation(PROXY, LOSS, raw=True, n_resamples=0)
    assert result.spearman == pytest.approx(stats.spearmanr(PROXY, LOSS).statistic, abs=1e-12)
    assert result.kendall == pytest.approx(stats.kendalltau(PROXY, LOSS).statistic, abs=1e-12)
    assert result.spearman < -0.8  # this proxy is good: high values, low losses


def test_direction_adjusted_sign():
    raw = rank_correlation(PROXY, LOSS, raw=True, n_resamples=0)
    up = rank_correlation(PROXY, LOSS, higher_is_better=True, n_resamples=0)
    down = rank_correlation(-PROXY, LOSS, higher_is_better=False, n_resamples=0)
    assert up.spearman == pytest.approx(-raw.spearman) and up.kendall == pytest.approx(-raw.kendall)
    assert down.spearman == pytest.approx(up.spearman) and down.kendall == pytest.approx(up.kendall)
    assert up.spearman > 0.8


def test_nan_and_inf_pairs_are_dropped_and_counted():
    proxy = np.append(PROXY, [np.nan, np.inf, 1.0])
    loss = np.append(LOSS, [0.5, 0.5, -np.inf])
    result = rank_correlation(proxy, loss, raw=True, n_resamples=0)
    assert (result.n, result.dropped) == (20, 3)
    assert result.spearman == pytest.approx(stats.spearmanr(PROXY, LOSS).statistic)


def test_bootstrap_interval_is_seeded_and_contains_the_estimate():
    a = rank_correlation(PROXY, LOSS, n_resamples=500, seed=3)
    b = rank_correlation(PROXY, LOSS, n_resamples=500, seed=3)
    assert a == b
    assert a.spearman_ci[0] < a.spearman < a.spearman_ci[1] <= 1
    assert a.kendall_ci[0] < a.kendall < a.kendall_ci[1] <= 1


def test_degenerate_input_is_nan():
    assert math.isnan(rank_correlation([1, 2], [3, 4], n_resamples=0).spearman)
    assert math.isnan(rank_correlation([1, 1, 1, 1], [1, 2, 3, 4], n_resamples=0).kendall)


def test_correlation_frame_groups_and_directions():
    frame = pd.DataFrame({"level": [0] * 20 + [1] * 20, "p": np.tile(PROXY, 2), "q": np.tile(-PROXY, 2),
                          "test_loss": np.tile(LOSS, 2)})  # fmt: skip
    table = correlation_frame(frame, ["p", "q"], by="level", higher_is_better={"p": True, "q": False}, n_resamples=0)
    assert list(table["level"]) == [0, 0, 1, 1] and list(table["statistic"]) == ["p", "q", "p", "q"]
    assert np.allclose(table["spearman"], -stats.spearmanr(PROXY, LOSS).statistic)
    raw = correlation_frame(frame, ["q"], raw=True, n_resamples=0)
    assert raw["spearman"].item() == pytest.approx(-stats.spearmanr(PROXY, LOSS).statistic)
    assert raw["n"].item() == 40
