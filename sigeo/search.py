"""Architecture search from a warmed-up supernet: regularized evolution and random search (docs/reference.md §4).

The supernet is loaded once; every candidate is scored in-process with inherited weights (no
process, data loader or checkpoint copy per candidate, as the reference had). The probe batches,
the one-shot fine-tuning batches and the evaluation batches are loaded once and shared, so every
candidate sees the same data. Each evaluated candidate becomes one row of ``records.csv``; rows
are appended as they are made, so a killed search resumes by replaying its seeded choices and
taking the scores it already has from the file.

A candidate whose proxy fails scores NaN and ranks last, but a search where that happens to more than
``search.max_nan_fraction`` of its candidates fails, naming how many and why: its ranking would say
little. An out-of-memory or CUDA error stops the job at once, naming the candidate and the device.
"""

from __future__ import annotations

import csv
import ctypes
import ctypes.util
import io
import json
import logging
import math
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .data.store import SHARDS, Dataset, Split, batch_ranges
from .devices import device_failures
from .errors import ConfigError, SigeoError
from .io import atomic_path, write_json
from .proxies import ProbeContext, ProbeSettings, get_proxy, score
from .proxies.synflow import unit_inputs
from .space.choice import Architecture, get_space, mutate, sample_architecture
from .space.subnet import standalone_size
from .space.supernet import Candidate, SuperNet
from .train import clip_grad_norm, logloss, make_optimizer, make_scheduler, to_device

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Size columns of every record: dense #params, FLOPs per sample as torch's flop counter counts them
#: (2 per multiply-add, every block) and NASRec's MFLOPs (multiply-adds of what reaches the logit).
SIZE_COLUMNS = ("params", "flops_2x_all_blocks", "mflops_nasrec")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


@dataclass(frozen=True)
class ProbeData:
    """How much data a candidate is scored on (the config's ``proxy`` section), and over how many
    shards the splits are read (``data.shards``)."""

    probe_batches: int
    probe_batch_size: int
    finetune_steps: int
    finetune_lr: float
    eval_batches: int
    eval_batch_size: int
    shards: int = SHARDS

    @classmethod
    def from_config(cls, config: dict) -> ProbeData:
        p = config["proxy"]
        return cls(**{k: p[k] for k in cls.__dataclass_fields__ if k != "shards"}, shards=config["data"]["shards"])


Batches = list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def scoring_batches(train: Split, val: Split, data: ProbeData, oneshot: bool) -> tuple[Batches, Batches, Batches]:
    """The probe, fine-tuning and evaluation batches every candidate is scored on.

    Each is the start of a fresh read of its split in the reference's order (round-robin over
    ``data.shards`` contiguous shards, :func:`batch_ranges`), as every candidate of the reference
    opens fresh loaders: the probe batches are the first ``probe_batches`` whole batches of the
    training split, the fine-tuning batches the first ``finetune_steps`` (fewer if the split holds
    fewer), the evaluation batches the first ``eval_batches`` of validation (a shard's last batch
    may be partial, as there). Without ``oneshot`` only the probe batches are read.
    """
    ranges = batch_ranges(len(train), data.probe_batch_size, data.shards, drop_last=True)
    if len(ranges) < data.probe_batches:
        raise ConfigError(
            f"proxy.probe_batches ({data.probe_batches}) exceeds the {len(ranges)} whole batches of "
            f"proxy.probe_batch_size ({data.probe_batch_size}) rows in the data.shards ({data.shards}) shards of the "
            f"training split ({len(train)} rows)"
        )
    probe = list(train.read(ranges[: data.probe_batches]))
    if not oneshot:
        return probe, [], []
    finetune = list(train.read(ranges[: data.finetune_steps]))
    evaluation = list(val.read(batch_ranges(len(val), data.eval_batch_size, data.shards)[: data.eval_batches]))
    return probe, finetune, evaluation


class TooManyNaN(SigeoError):
    """More candidates than ``search.max_nan_fraction`` allows have no finite score."""


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


class CandidateScorer:
    """Scores architectures inside one warmed-up supernet with one or more proxies.

    Each candidate becomes a :class:`Candidate`: its own copies of the weight regions it reads and
    of the probe batches' embedding rows, so probing it never touches the supernet (which stays
    frozen) and its gradients are the size of the subnet. ``failures`` counts why proxies scored NaN
    ("proxy: cause"), over every candidate scored.
    """

    def __init__(
        self,
        supernet: SuperNet,
        dataset: Dataset,
        proxies: list[str],
        probe: ProbeSettings,
        data: ProbeData,
        device: torch.device,
    ) -> None:
        self.supernet, self.proxies, self.probe, self.data, self.device = supernet, proxies, probe, data, device
        self.failures: Counter[str] = Counter()
        self._failures_lock = threading.Lock()
        for name in proxies:
            get_proxy(name)
        supernet.eval()  # no dropout anywhere; LayerNorm has no running statistics
        for p in supernet.parameters():
            p.requires_grad_(False)
        probe, finetune, evaluation = scoring_batches(dataset.split("train"), dataset.split("val"), data,
                                                      "oneshot" in proxies)  # fmt: skip
        self.probe_batches = [to_device(b, device) for b in probe]
        self.num_dense, self.num_sparse = dataset.num_dense, dataset.num_sparse
        ids = [b[1] for b in self.probe_batches] + [unit_inputs(*self.probe_batches[0][:2])[1]]
        self.embedding_rows = torch.unique(torch.cat(ids) + supernet.stem.offsets)
        self.finetune = [to_device(b, device) for b in finetune]
        self.eval = [to_device(b, device) for b in evaluation]

    def score(self, arch: Architecture) -> dict[str, float]:
        """All configured proxy scores (with their components), #params and the two FLOP counts per sample.

        An out-of-memory or CUDA error raises :class:`~sigeo.devices.DeviceFailure` naming the candidate.
        """
        with device_failures(f"scoring candidate {arch.hash()}", self.device):
            ctx = self.context(arch)
            scores = score(self.proxies, ctx)
        causes = [f"{name}: {ctx.failures.get(name, 'returned a non-finite score')}"
                  for name in self.proxies if not math.isfinite(scores[name])]  # fmt: skip
        if causes:
            with self._failures_lock:
                self.failures.update(causes)
        return {**scores, **{k: ctx.extras[k] for k in SIZE_COLUMNS}}

    def cost(self, arch: Architecture) -> float:
        """FLOPs per sample of ``arch``'s network: its scoring cost relative to other candidates."""
        return standalone_size(arch, self.num_dense, self.num_sparse)["flops_2x_all_blocks"]

    def context(self, arch: Architecture) -> ProbeContext:
        """What the proxies see of ``arch``: in ``fixed`` mode every parameter it uses is measured
        (each embedding table its own parameter, as in the reference's model); in ``faithful`` mode
        only its head, with an optimizer step after each probe batch (docs/reference.md §5.3)."""
        size = standalone_size(arch, self.num_dense, self.num_sparse)
        extras = {**size, "hash": arch.hash(), "oneshot": lambda: self.oneshot(arch)}
        candidate = Candidate(self.supernet, arch, self.embedding_rows)
        params, step = candidate.probed(), None
        if self.probe.sigeo_mode == "faithful":
            params, step = _head_finetuning(candidate, self.data)
        return ProbeContext(candidate, self.probe_batches, _loss, self.probe, params=params, step=step, extras=extras)

    def oneshot(self, arch: Architecture) -> float:
        """Fine-tune only the head on the shared fine-tuning batches, then val log loss (docs/reference.md §4.1).

        Everything below the head is frozen, so the head's input is a fixed function of each batch:
        it is computed once per batch without autograd (no graph is kept for the frozen part) and
        the head is stepped and evaluated on it, one batch at a time so that memory stays that of
        one batch. The steps are the ones a full forward would take (the same linear map of the same
        features, the same clipped Adagrad steps), so the score is the same to float rounding.
        """
        candidate = Candidate(self.supernet, arch)
        head, step = _head_finetuning(candidate, self.data)
        weight, bias = head["head.weight"], head["head.bias"]

        def features(batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            with torch.no_grad():
                return candidate.head_input(batch[0], batch[1])

        with torch.enable_grad():
            for batch in self.finetune:
                candidate.zero_grad(set_to_none=True)
                logloss(F.linear(features(batch), weight, bias).squeeze(1), batch[2]).backward()
                step()
        total, rows = 0.0, 0
        with torch.no_grad():
            for batch in self.eval:
                logits = F.linear(features(batch), weight, bias).squeeze(1)
                total += float(logloss(logits.double(), batch[2].double())) * len(logits)
                rows += len(logits)
        return total / rows


def _head_finetuning(candidate: Candidate, data: ProbeData) -> tuple[dict[str, torch.nn.Parameter], Callable[[], None]]:
    """Freeze all but the candidate's copy of the head; return it and one fine-tuning step.

    A step clips the head's gradient and takes an Adagrad step; the schedule is docs/reference.md §4.1.3's:
    ``finetune_steps`` long with a 10 % warm-up, reset after the first step, so the first two steps
    use lr 1e-8. Faithful SiGeo runs it between probe batches, one-shot scoring for every batch.
    """
    head = {name: p for name, p in candidate.measured().items() if name.startswith("head.")}
    for p in candidate.parameters():
        p.requires_grad_(False)
    for p in head.values():
        p.requires_grad_(True)
    optimizer = make_optimizer(candidate, data.finetune_lr)
    scheduler = make_scheduler(optimizer, data.finetune_steps, data.finetune_steps // 10)
    steps = [0]

    def step() -> None:
        clip_grad_norm(head.values())
        optimizer.step()
        if steps[0] > 0:
            scheduler.step()
        steps[0] += 1

    return head, step


def _loss(model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return logloss(model(batch[0], batch[1]), batch[2])


# --- records ------------------------------------------------------------------------------------
@dataclass
class Record:
    index: int
    generation: int
    arch: Architecture
    scores: dict[str, float]


class RecordLog:
    """Append-only ``records.partial.csv``; renamed to ``records.csv`` when the search ends.

    One line per evaluated candidate, written, flushed and fsynced as soon as it is scored. A line
    cut by a kill (the file then does not end in a newline) is dropped on restart and its candidate
    scored again; no wall-clock times are stored, so equal settings give byte-identical files.
    """

    META = ("index", "generation", "hash", "arch")

    def __init__(self, path: Path) -> None:
        self.path, self.partial = path, path.with_name(path.stem + ".partial.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.done: list[dict] = []
        if self.partial.exists():
            text = self.partial.read_text()
            self.done = list(csv.DictReader(io.StringIO(text[: text.rfind("\n") + 1], newline="")))
        self._fh = None
        self._writer = None

    def replay(self, index: int, arch: Architecture) -> Record | None:
        """The record of evaluation ``index`` if it was made before a restart (same choice, by hash)."""
        if index >= len(self.done):
            return None
        row = self.done[index]
        if row["hash"] != arch.hash():
            raise RuntimeError(f"{self.partial}: row {index} holds another candidate; the search settings changed")
        scores = {k: float(v) for k, v in row.items() if k not in self.META}
        return Record(index, int(row["generation"]), arch, scores)

    def append(self, record: Record) -> None:
        row = {
            "index": record.index,
            "generation": record.generation,
            "hash": record.arch.hash(),
            "arch": record.arch.to_json(),
            **record.scores,
        }
        if self._writer is None:
            self._fh = open(self.partial, "w", newline="")  # noqa: SIM115 - closed in finish()
            self._writer = csv.DictWriter(self._fh, fieldnames=list(row), restval="nan", extrasaction="ignore")
            self._writer.writeheader()
            self._writer.writerows(self.done)
        self._writer.writerow(row)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
        with atomic_path(self.path, ".csv") as tmp:
            os.replace(self.partial, tmp)


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


class Workers:
    """Scores candidates ``count`` at a time in threads; results come back in the candidates' order.

    With ``cost`` (a candidate's relative scoring cost) the costliest start first, so that the last
    candidates of a batch do not leave workers idle while one finishes a large subnet.
    """

    def __init__(self, count: int, cost: Callable[[Architecture], float] | None = None) -> None:
        self.count, self.cost = count, cost
        self._pool = ThreadPoolExecutor(count) if count > 1 else None

    def map(self, fn: Callable[[Architecture], T], archs: Sequence[Architecture]) -> Iterator[T]:
        if self._pool is None:
            return map(fn, archs)
        order = sorted(range(len(archs)), key=lambda i: -self.cost(archs[i])) if self.cost else range(len(archs))
        futures = {i: self._pool.submit(fn, archs[i]) for i in order}
        return (futures[i].result() for i in range(len(archs)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


@contextmanager
def scoring_workers(device: torch.device, cost: Callable[[Architecture], float] | None = None) -> Iterator[Workers]:
    """The workers a job scores with: on CPU one per thread the job has, each single-threaded.

    Small subnets keep two intra-op threads poorly busy (measured with bench/search.py: 2 workers ×
    1 thread score 1.25–1.45× as many candidates per second as 1 × 2), and a single-threaded
    candidate's scores do not depend on the job's thread count, so records are the same whatever
    ``--cores``. On a GPU, one at a time. On CPU the process also keeps the memory it frees from then
    on (see :func:`_keep_freed_memory`).
    """
    threads = torch.get_num_threads()
    on_gpu = device.type != "cpu"
    if not on_gpu:
        _keep_freed_memory()
        torch.set_num_threads(1)
    workers = Workers(1 if on_gpu else threads, cost)
    try:
        yield workers
    finally:
        workers.close()
        torch.set_num_threads(threads)


def _keep_freed_memory() -> None:
    """Have glibc keep freed memory in the process rather than hand it back to the OS at once.

    Scoring a candidate allocates and frees hundreds of MB of activations and gradients; with the
    default malloc settings each big block is a fresh mmap whose pages fault in again, which cost
    0.23 s of system time per 12-MFLOP candidate (measured), half of it saved by this.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return  # not glibc: nothing to tune
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    mallopt(_M_MMAP_THRESHOLD, 1 << 30)


def mutation_count(generation: int, generations: int) -> int:
    """Mutations per child: ⌊(G − g) / max(20, ⌊G/5⌋)⌋ + 1 (6 at g = 0 for G = 240, 1 at the end)."""
    return (generations - generation) // max(20, generations // 5) + 1


def search(
    supernet_path: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    space_name: str,
    proxy: str,
    config: dict,
    out_path: str | os.PathLike,
    device: torch.device,
) -> list[Record]:
    """Load the supernet once and search with ``proxy``; writes ``records.csv`` (and resumes it)."""
    from .warmup import WarmupSettings, load_supernet

    dataset = Dataset.open(dataset_dir)
    warm = WarmupSettings.from_config(config)
    supernet = load_supernet(supernet_path, get_space(space_name, warm.space_widths), dataset, warm, device)
    scorer = CandidateScorer(
        supernet, dataset, [proxy], ProbeSettings.from_config(config), ProbeData.from_config(config), device
    )
    records = RecordLog(Path(out_path))
    if records.done:
        log.info("resuming: %d candidates already scored in %s", len(records.done), records.partial)
    settings = SearchSettings.from_config(config)
    started = time.perf_counter()
    with scoring_workers(device, scorer.cost) as workers:
        log.info("scoring on %s with %d worker(s)", device, workers.count)
        history = run_search(
            scorer.score,
            space_name,
            warm.num_blocks,
            proxy,
            settings,
            records,
            workers,
            warm.space_widths,
            lambda: scorer.failures,
        )
    records.finish()
    seconds = time.perf_counter() - started
    log.info("%d candidates (%d new) in %.1f s", len(history), len(history) - len(records.done), seconds)
    return history


# --- export ---------------------------------------------------------------------------------------
EXPORT_FROM = ("history", "all")


def history_rows(rows: list[dict], key: Callable[[dict], float], per_generation: int) -> list[dict]:
    """The reference's history: of each generation's children, the ``per_generation`` best (ties in
    record order). The initial population (generation 0) is not in it; without children (a random
    search, no generations) the history is every record."""
    generations: dict[int, list[dict]] = {}
    for row in rows:
        if int(row["generation"]) > 0:
            generations.setdefault(int(row["generation"]), []).append(row)
    if not generations:
        return rows
    return [
        row
        for g in sorted(generations)
        for row in sorted(generations[g], key=lambda r: (-key(r), int(r["index"])))[:per_generation]
    ]


def export_top(
    records_csv: str | os.PathLike,
    proxy: str,
    top_k: int,
    out_dir: str | os.PathLike,
    export_from: str = "all",
    history_top_k: int = 2,
) -> list[dict]:
    """The ``top_k`` best distinct architectures as reference-format JSON files ``{rank}.json``.

    ``export_from``: ``all`` ranks every scored record (the initial population included);
    ``history`` ranks only the reference's history (:func:`history_rows`, ``history_top_k`` per
    generation), as its export did. Distinct by hash: the reference kept a record only when its
    score differed from the previous one, which drops different architectures that happen to tie
    and keeps duplicates whose scores differ by noise. NaN scores rank last. ``test_loss`` holds the
    minimised criterion, as in the reference's files; ``score`` the proxy's own value.
    """
    if export_from not in EXPORT_FROM:
        raise ConfigError(f"search.export_from must be one of {', '.join(EXPORT_FROM)}, got {export_from!r}")
    higher = get_proxy(proxy).higher_is_better

    def goodness(row: dict) -> float:
        value = float(row[proxy])
        return -math.inf if not math.isfinite(value) else (value if higher else -value)

    with open(records_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if export_from == "history":
        rows = history_rows(rows, goodness, history_top_k)
    best: dict[str, dict] = {}
    for row in rows:
        key = goodness(row)
        if row["hash"] not in best or key > best[row["hash"]]["key"]:
            best[row["hash"]] = {"key": key, "row": row, "value": float(row[proxy])}
    ranked = sorted(best.values(), key=lambda r: (-r["key"], int(r["row"]["index"])))[:top_k]
    if len(ranked) < top_k:
        raise ValueError(f"{records_csv}: only {len(ranked)} distinct architectures for top_k={top_k}")
    exported = []
    for rank, entry in enumerate(ranked):
        arch = Architecture.from_dict(json.loads(entry["row"]["arch"]))
        value = entry["value"] if math.isfinite(entry["value"]) else None  # JSON has no NaN
        minimised = None if value is None else (value if not higher else -value)
        doc = {**arch.to_dict(minimised), "proxy": proxy, "score": value, "hash": entry["row"]["hash"]}
        write_json(Path(out_dir) / f"{rank}.json", doc)
        exported.append(doc)
    return exported
