"""Path sampling strategies for supernet warm-up, with the reference's full-path mixing (docs/reference.md §3.1)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .choice import Architecture, Block, SearchSpace, full_path, sample_macro, sample_micro

#: strategy -> (macro sampler, micro sampler)
STRATEGIES = {
    "default": ("any", "single"),
    "single-path": ("single", "single"),
    "any-path": ("any", "any"),
    "full-path": ("full", "full"),
}


@dataclass
class PathSampler:
    """Draws the path of each training step.

    Early in warm-up the full path replaces the sampled one with probability 1 - t/T at step t
    (0 < t < T), drawn once per step for the inputs and once per block for the operators, whose
    counter lags by one step (1 - (t-1)/T for 1 < t <= T), exactly as the reference counts.
    With ``full_path_min`` > 0 every training step is, with that probability, the whole full path
    (one extra draw per step): the full path keeps being trained after the reference's mixing has
    ended, instead of drifting while only subnets are.
    """

    space: SearchSpace
    num_blocks: int
    strategy: str
    count_rule: str
    full_path_steps: int
    seed: int
    full_path_min: float = 0.0
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; expected one of {sorted(STRATEGIES)}")
        if not 0.0 <= self.full_path_min <= 1.0:
            raise ValueError(f"full_path_min must lie in [0, 1], got {self.full_path_min}")
        self.rng = np.random.default_rng(self.seed)

    def sample(self, step: int | None = None) -> Architecture:
        """The path of training step ``step``; without a step, a plain draw with no full-path mixing."""
        macro_mode, micro_mode = STRATEGIES[self.strategy]
        t, horizon = (step, self.full_path_steps) if step is not None else (0, 0)
        if step is not None and self.full_path_min > 0 and self.rng.random() < self.full_path_min:
            return full_path(self.space, self.num_blocks)
        full_macro = self.rng.random() < (1 - t / horizon if 0 < t < horizon else 0.0)
        blocks = []
        for b in range(self.num_blocks):
            full_micro = self.rng.random() < (1 - (t - 1) / horizon if 1 < t <= horizon else 0.0)
            macro = sample_macro(self.rng, b, "full" if full_macro else macro_mode, self.count_rule)
            micro = sample_micro(self.rng, self.space, "full" if full_micro else micro_mode, self.count_rule)
            blocks.append(Block(**macro, **micro))
        return Architecture(self.space, tuple(blocks))

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state
