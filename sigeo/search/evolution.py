"""Regularized evolution and random search over a scorer, and the search job that runs them.

A candidate whose proxy fails scores NaN and ranks last, but a search where that happens to more than
``search.max_nan_fraction`` of its candidates fails, naming how many and why: its ranking would say
little. An out-of-memory or CUDA error stops the job at once, naming the candidate and the device.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from ..data.store import Dataset
from ..errors import SigeoError
from ..proxies import get_proxy
from ..space.choice import Architecture, get_space, mutate, sample_architecture
from .records import Record, RecordLog
from .scorer import CandidateScorer
from .settings import SearchSettings
from .workers import Workers, scoring_workers

if TYPE_CHECKING:
    from ..config import SearchJob

log = logging.getLogger(__package__)  # the job logs as "sigeo.search", whichever module of it writes


class TooManyNaN(SigeoError):
    """More candidates than ``search.max_nan_fraction`` allows have no finite score."""


def run_search(
    scorer_fn: Callable[[Architecture], dict[str, float]],
    space_name: str,
    num_blocks: int,
    criterion: str,
    settings: SearchSettings,
    records: RecordLog,
    workers: Workers | None = None,
    widths: dict[str, list[int]] | None = None,
    causes: Callable[[], Mapping[str, int]] | None = None,
) -> list[Record]:
    """Regularized evolution (docs/reference.md §4.4) or random search; returns every evaluated candidate.

    Candidates whose choice does not depend on each other's scores (the initial population, the
    children of one generation, a random search's budget) are scored together, by ``workers`` if
    given, and recorded in their seeded order, so the records are the same for any number of workers.
    Once more candidates than ``settings.nan_allowed`` have no finite ``criterion`` score the search
    raises :class:`TooManyNaN` (the records so far stay in the partial file), with the counts of
    ``causes()`` (cause -> candidates, e.g. :attr:`CandidateScorer.failures`) as the reasons.
    """
    higher = get_proxy(criterion).higher_is_better
    rng = np.random.default_rng(settings.seed)
    space = get_space(space_name, widths)
    history: list[Record] = []
    progress = tqdm(total=settings.evaluations, desc=f"search {criterion}", mininterval=5.0)
    score_all = (workers or Workers(1)).map

    def evaluate(archs: list[Architecture], generation: int) -> list[Record]:
        start = len(history)
        replayed = [records.replay(start + i, arch) for i, arch in enumerate(archs)]
        todo = [arch for arch, record in zip(archs, replayed, strict=True) if record is None]
        scores = score_all(scorer_fn, todo)
        for i, (arch, record) in enumerate(zip(archs, replayed, strict=True)):
            if record is None:
                record = Record(start + i, generation, arch, next(scores))
                records.append(record)
            history.append(record)
            progress.update()
        check_nan_share(history, criterion, settings, causes() if causes else {})
        return history[start:]

    def goodness(record: Record) -> float:
        value = record.scores[criterion]
        if not math.isfinite(value):
            return -math.inf  # NaN and inf rank last, whatever the direction
        return value if higher else -value

    try:
        if settings.method == "random":
            evaluate([sample_architecture(rng, space, num_blocks) for _ in range(settings.random_budget)], 0)
            return history
        initial = [sample_architecture(rng, space, num_blocks) for _ in range(settings.init_population)]
        population = deque(evaluate(initial, 0))
        seen = {r.arch.hash() for r in population}
        for g in range(settings.n_generations):
            members = rng.choice(len(population), settings.sample_size, replace=False)
            parent = max((population[int(i)] for i in members), key=goodness)
            mutations = mutation_count(g, settings.n_generations)
            children = []
            for _ in range(settings.n_childs):
                child = parent.arch
                for _ in range(100):  # keep mutating the child until it is new (docs/reference.md §4.4)
                    for _ in range(mutations):
                        child = mutate(rng, child)
                    if child.hash() not in seen:
                        break
                seen.add(child.hash())
                children.append(child)
            population.extend(evaluate(children, g + 1))
            for _ in range(settings.n_childs):
                population.popleft()
        return history
    finally:
        progress.close()


def check_nan_share(
    history: Sequence[Record], criterion: str, settings: SearchSettings, causes: Mapping[str, int]
) -> None:
    """Raise :class:`TooManyNaN` once more of ``history`` than ``settings.nan_allowed`` has no finite
    ``criterion`` score: the message gives the counts and the three commonest causes."""
    bad = sum(1 for record in history if not math.isfinite(record.scores[criterion]))
    if bad <= settings.nan_allowed:
        return
    own = Counter({cause: n for cause, n in causes.items() if cause.startswith(f"{criterion}: ")})
    why = [f"{n}x {cause.removeprefix(f'{criterion}: ')}" for cause, n in own.most_common(3)]
    if (rest := bad - sum(own.values())) > 0:
        why.append(f"{rest}x scored before this job restarted (see its earlier log)")
    raise TooManyNaN(
        f"search by {criterion}: {bad} of the {len(history)} candidates scored so far have no finite score, more "
        f"than search.max_nan_fraction = {settings.max_nan_fraction:g} of its {settings.evaluations} candidates "
        f"allows ({settings.nan_allowed}); causes: {'; '.join(why)}"
    )


def mutation_count(generation: int, generations: int) -> int:
    """Mutations per child: ⌊(G − g) / max(20, ⌊G/5⌋)⌋ + 1 (6 at g = 0 for G = 240, 1 at the end)."""
    return (generations - generation) // max(20, generations // 5) + 1


def search(
    supernet_path: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    space_name: str,
    proxy: str,
    settings: SearchJob,
    out_path: str | os.PathLike,
    device: torch.device,
) -> list[Record]:
    """Load the supernet once and search with ``proxy``; writes ``records.csv`` (and resumes it)."""
    from ..warmup import load_supernet

    dataset = Dataset.open(dataset_dir)
    warm = settings.warmup
    supernet = load_supernet(supernet_path, get_space(space_name, warm.space_widths), dataset, warm, device)
    scorer = CandidateScorer(supernet, dataset, [proxy], settings.proxy, settings.probe_data, device)
    records = RecordLog(Path(out_path))
    if records.done:
        log.info("resuming: %d candidates already scored in %s", len(records.done), records.partial)
    started = time.perf_counter()
    with scoring_workers(device, scorer.cost) as workers:
        log.info("scoring on %s with %d worker(s)", device, workers.count)
        history = run_search(
            scorer.score,
            space_name,
            warm.num_blocks,
            proxy,
            settings.search,
            records,
            workers,
            warm.space_widths,
            lambda: scorer.failures,
        )
    records.finish()
    seconds = time.perf_counter() - started
    log.info("%d candidates (%d new) in %.1f s", len(history), len(history) - len(records.done), seconds)
    return history
