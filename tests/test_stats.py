"""Rank statistics against scipy on fixed vectors: ties, the direction flip, NaN dropping, intervals; the
ground truth's reliability and paired differences against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sigeo.study.stats import (
    correlation_frame,
    kendall_last_axis,
    paired_difference,
    rank_correlation,
    reliability,
    spearman_last_axis,
)

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


def test_reliability_of_two_seeds_by_hand():
    """Rows = subnets, columns = seeds. Row means 1.5, 2.5, 4, 4 (grand mean 3): MSB = 2 · (2.25 + 0.25 + 1 + 1)/3
    = 3; row variances 0.5, 0.5, 0, 2: MSW = 0.75; ICC(1) = (3 − 0.75)/(3 + 0.75) = 0.6; SD between
    = √((3 − 0.75)/2), within = √0.75. Seed ranks (1, 2, 4, 3) vs (1, 2, 3, 4): Σd² = 2 → ρ = 1 − 12/60 = 0.8;
    5 concordant pairs of 6 → τ = 4/6."""
    result = reliability([[1, 2], [2, 3], [4, 4], [3, 5]], n_resamples=0)
    assert result.icc1 == pytest.approx(0.6)
    assert result.sd_between == pytest.approx(math.sqrt(1.125)) and result.sd_within == pytest.approx(math.sqrt(0.75))
    assert result.spearman == pytest.approx(0.8) and result.kendall == pytest.approx(4 / 6)
    assert (result.subnets, result.seeds) == (4, 2) and all(math.isnan(v) for v in result.spearman_ci)


def test_reliability_of_three_seeds_by_hand():
    """Row means 2, 2, 5, 4 (grand 3.25): MSB = 3 · 6.75/3 = 6.75; row variances 1, 0, 1, 3: MSW = 1.25;
    ICC(1) = (6.75 − 1.25)/(6.75 + 2 · 1.25) = 5.5/9.25. ρ and τ: the mean over the three seed pairs."""
    matrix = np.array([[1, 2, 3], [2, 2, 2], [4, 5, 6], [3, 3, 6]], dtype=float)
    result = reliability(matrix, n_resamples=0)
    assert result.icc1 == pytest.approx(5.5 / 9.25)
    assert result.sd_between == pytest.approx(math.sqrt(5.5 / 3)) and result.sd_within == pytest.approx(math.sqrt(1.25))
    pairs = [(0, 1), (0, 2), (1, 2)]
    assert result.spearman == pytest.approx(np.mean([stats.spearmanr(matrix[:, a], matrix[:, b])[0] for a, b in pairs]))
    assert result.kendall == pytest.approx(np.mean([stats.kendalltau(matrix[:, a], matrix[:, b])[0] for a, b in pairs]))


def test_reliability_interval_and_limits():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=40)
    agreeing = reliability(np.column_stack([truth, truth * 2 + 1]), n_resamples=200)
    assert agreeing.spearman == 1.0 and agreeing.spearman_ci == pytest.approx((1.0, 1.0)) and agreeing.icc1 < 1
    matrix = rng.normal(size=(40, 2))
    noisy = reliability(matrix, n_resamples=200, seed=3)
    low, high = noisy.spearman_ci
    assert low < noisy.spearman < high and low < 0 < high and high - low > 0.3
    assert reliability(matrix, n_resamples=200, seed=3).spearman_ci == (low, high)  # seeded
    one_seed = reliability(np.ones((5, 1)), n_resamples=100)
    assert math.isnan(one_seed.spearman) and math.isnan(one_seed.icc1) and one_seed.seeds == 1
    with pytest.raises(ValueError, match="NaN"):
        reliability([[1, 2], [3, float("nan")], [4, 5]])


def test_paired_difference_of_two_correlations():
    rng = np.random.default_rng(1)
    loss = rng.uniform(0.4, 0.6, 30)
    good, bad = -loss, rng.normal(size=30)  # goodness: higher for lower loss
    result = paired_difference(good, bad, -loss, n_resamples=200)
    assert result.estimate == pytest.approx(1 - stats.spearmanr(bad, -loss)[0]) and result.n == 30
    assert result.low <= result.estimate <= result.high and result.low > 0
    same = paired_difference(bad, bad, -loss, n_resamples=200)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)  # shared noise cancels exactly
    opposite = paired_difference(good, loss, -loss, n_resamples=200)
    assert (opposite.estimate, opposite.low, opposite.high) == pytest.approx((2.0, 2.0, 2.0))
    bad[4] = np.nan
    assert paired_difference(good, bad, -loss, n_resamples=0).n == 29


def test_spearman_along_the_last_axis_is_scipys_row_by_row():
    """With ties (PROXY, LOSS) and over a batch of resamples: one call, the same values as one spearmanr each."""
    assert spearman_last_axis(PROXY, LOSS) == pytest.approx(stats.spearmanr(PROXY, LOSS).statistic, abs=1e-12)
    rows = np.random.default_rng(0).integers(0, len(PROXY), (5, len(PROXY)))
    expected = [stats.spearmanr(PROXY[i], LOSS[i]).statistic for i in rows]
    assert spearman_last_axis(PROXY[rows], LOSS[rows]) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(spearman_last_axis(np.ones(4), np.arange(4.0)))


def test_kendall_along_the_last_axis_is_scipys_tau_b_row_by_row():
    """Hand-computed τ-b with ties, then scipy's kendalltau on every resample of a batch (bootstrap
    resamples repeat rows, so most hold ties in both vectors) from one call."""
    # x = (1, 1, 2, 3), y = (1, 2, 2, 3): 6 pairs, 1 tied in x, 1 tied in y, none in both;
    # the other pairs: (1,3) (1,4) (2,4) (3,4) concordant, (2,3) neither (tied in y) → 4 / √(5 · 5)
    assert kendall_last_axis(np.array([1.0, 1, 2, 3]), np.array([1.0, 2, 2, 3])) == pytest.approx(0.8)
    assert kendall_last_axis(PROXY, LOSS) == pytest.approx(stats.kendalltau(PROXY, LOSS).statistic, abs=1e-12)
    rows = np.random.default_rng(0).integers(0, len(PROXY), (50, len(PROXY)))
    expected = [stats.kendalltau(PROXY[i], LOSS[i]).statistic for i in rows]
    assert kendall_last_axis(PROXY[rows], LOSS[rows]) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(kendall_last_axis(np.ones(4), np.arange(4.0)))
