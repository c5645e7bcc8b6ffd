"""The config's ``search`` section as the searches read it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class SearchSettings:
    """The config's ``search`` section and the run's seed. ``max_nan_fraction``: the largest share of
    the candidates that may score NaN (or inf) before the search fails."""

    method: str
    init_population: int
    sample_size: int
    n_childs: int
    n_generations: int
    random_budget: int
    seed: int
    max_nan_fraction: float

    def __post_init__(self) -> None:
        if self.method == "regularized-ea" and self.sample_size > self.init_population:
            raise ConfigError(
                f"search.sample_size ({self.sample_size}) exceeds search.init_population ({self.init_population})"
            )

    @classmethod
    def from_config(cls, config: dict) -> SearchSettings:
        s = config["search"]
        return cls(**{k: s[k] for k in cls.__dataclass_fields__ if k != "seed"}, seed=config["seed"])

    @property
    def nan_allowed(self) -> int:
        """How many of the search's candidates may score NaN before it fails."""
        return math.floor(self.max_nan_fraction * self.evaluations)

    @property
    def evaluations(self) -> int:
        if self.method == "random":
            return self.random_budget
        return self.init_population + self.n_generations * self.n_childs
