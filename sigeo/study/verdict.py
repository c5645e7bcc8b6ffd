"""Verdicts for the claims the summaries print: PASS, FAIL or INCONCLUSIVE, with the numbers used.

A claim is only decided when the data could have decided it the other way. It is INCONCLUSIVE when
the ground truth it rests on is not reliable enough (the ranking being predicted is mostly seed
noise), or when the confidence interval of the compared quantity contains the claim's threshold:
then neither outcome is supported. Otherwise it PASSes when the whole interval lies on the claimed
side and FAILs when the whole interval lies on the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"


@dataclass(frozen=True)
class Verdict:
    """One claim's outcome: ``status`` is PASS, FAIL or INCONCLUSIVE; ``numbers`` what decided it."""

    claim: str
    status: str
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """The claim, its verdict and its numbers on one line (for summaries and logs)."""
        shown = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in self.numbers.items())
        return (
            f"{self.claim}: **{self.status}** ({self.reason}; {shown})"
            if shown
            else f"{self.claim}: **{self.status}** ({self.reason})"
        )


def interval_verdict(
    claim: str,
    estimate: float,
    low: float,
    high: float,
    *,
    threshold: float = 0.0,
    reliability: float | None = None,
    min_reliability: float | None = None,
) -> Verdict:
    """Decide "the quantity exceeds ``threshold``" from its estimate and confidence interval.

    ``reliability`` (e.g. the ground truth's seed-pair Spearman) below ``min_reliability`` makes the
    claim INCONCLUSIVE whatever the interval says: a ranking that seeds cannot reproduce cannot be
    predicted, so a correlation with it supports nothing.
    """
    numbers = {"estimate": estimate, "low": low, "high": high, "threshold": threshold}
    if reliability is not None:
        numbers["reliability"] = reliability
    if not all(math.isfinite(v) for v in (estimate, low, high)):
        return Verdict(claim, INCONCLUSIVE, "undefined estimate or interval", numbers)
    if reliability is not None and min_reliability is not None:
        numbers["min_reliability"] = min_reliability
        if not (math.isfinite(reliability) and reliability >= min_reliability):
            return Verdict(claim, INCONCLUSIVE, "ground truth less reliable than required", numbers)
    if low > threshold:
        return Verdict(claim, PASS, "interval above the threshold", numbers)
    if high < threshold:
        return Verdict(claim, FAIL, "interval below the threshold", numbers)
    return Verdict(claim, INCONCLUSIVE, "interval contains the threshold", numbers)
