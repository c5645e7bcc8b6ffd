"""The random baseline: a uniform [0, 1) score drawn from the run's seed and the candidate's hash.

Seeding by the hash makes the score a fixed property of the candidate, so a search is reproducible
and a candidate met twice keeps its score (the reference drew from an unseeded worker RNG, docs/reference.md §5.4).
"""

from __future__ import annotations

import zlib

import numpy as np

from .gradients import ProbeContext
from .registry import register


@register("random", higher_is_better=True)
def random_score(ctx: ProbeContext) -> dict[str, float]:
    rng = np.random.default_rng([ctx.settings.seed, zlib.crc32(ctx.extras["hash"].encode())])
    return {"random": float(rng.random())}
