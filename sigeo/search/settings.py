"""The config's ``search`` section as the searches read it."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SearchSettings:
    """The config's ``search`` section as a search reads it, and the run's seed (built by
    :func:`sigeo.config.load_settings`, which also checks sample_size <= init_population).
    ``max_nan_fraction``: the largest share of the candidates that may score NaN (or inf) before the
    search fails."""

    method: str
    init_population: int
    sample_size: int
    n_childs: int
    n_generations: int
    random_budget: int
    seed: int
    max_nan_fraction: float

    @property
    def nan_allowed(self) -> int:
        """How many of the search's candidates may score NaN before it fails."""
        return math.floor(self.max_nan_fraction * self.evaluations)

    @property
    def evaluations(self) -> int:
        if self.method == "random":
            return self.random_budget
        return self.init_population + self.n_generations * self.n_childs
