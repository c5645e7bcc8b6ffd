"""Verdicts decide a claim only when the interval and the ground truth's reliability allow it."""

import math

from sigeo.study.verdict import FAIL, INCONCLUSIVE, PASS, interval_verdict


def test_interval_above_threshold_passes_below_fails_across_is_inconclusive():
    assert interval_verdict("c", 0.3, 0.1, 0.5).status == PASS
    assert interval_verdict("c", -0.3, -0.5, -0.1).status == FAIL
    assert interval_verdict("c", 0.1, -0.1, 0.3).status == INCONCLUSIVE
    assert interval_verdict("c", 0.6, 0.55, 0.7, threshold=0.5).status == PASS
    assert interval_verdict("c", 0.6, 0.45, 0.7, threshold=0.5).status == INCONCLUSIVE


def test_unreliable_ground_truth_or_undefined_numbers_are_inconclusive():
    unreliable = interval_verdict("c", 0.3, 0.1, 0.5, reliability=0.4, min_reliability=0.8)
    assert unreliable.status == INCONCLUSIVE and "reliable" in unreliable.reason
    assert interval_verdict("c", 0.3, 0.1, 0.5, reliability=0.85, min_reliability=0.8).status == PASS
    assert interval_verdict("c", math.nan, 0.1, 0.5).status == INCONCLUSIVE
    assert interval_verdict("c", 0.3, 0.1, 0.5, reliability=math.nan, min_reliability=0.8).status == INCONCLUSIVE


def test_line_names_claim_status_and_numbers():
    line = interval_verdict("SiGeo beats ZiCo", 0.25, 0.05, 0.4).line()
    assert line.startswith("SiGeo beats ZiCo: **PASS**") and "low 0.050" in line
