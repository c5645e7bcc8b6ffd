"""Architecture search from a warmed-up supernet: regularized evolution and random search (REFERENCE §4).

The supernet is loaded once; every candidate is scored in-process with inherited weights (no
process, data loader or checkpoint copy per candidate, as the reference had). The probe batches,
the one-shot fine-tuning batches and the evaluation batches are loaded once and shared, so every
candidate sees the same data. Each evaluated candidate becomes one row of ``records.csv``; rows
are appended as they are made, so a killed search resumes by replaying its seeded choices and
taking the scores it already has from the file.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .data.store import Dataset
from .io import atomic_path, write_json
from .proxies import ProbeContext, ProbeSettings, Region, get_proxy, score
from .space.choice import Path as Architecture
from .space.choice import get_space, mutate, sample_architecture
from .space.subnet import StandaloneNet
from .space.supernet import PathModel, SuperNet, record_usage
from .train import clip_grad_norm, logloss, make_optimizer, make_scheduler, to_device

log = logging.getLogger(__name__)

#: Proxies that read the shared gradient pass (the faithful SiGeo setting changes that pass).
GRADIENT_PROXIES = {"sigeo", "zico", "fisher_rao", "loss", "grad_abs_mean", "grad_std", "grad_norm", "snip", "fisher"}


@dataclass(frozen=True)
class ProbeData:
    """How much data a candidate is scored on (the config's ``proxy`` section)."""

    probe_batches: int
    probe_batch_size: int
    finetune_steps: int
    finetune_lr: float
    eval_batches: int
    eval_batch_size: int

    @classmethod
    def from_config(cls, config: dict) -> ProbeData:
        p = config["proxy"]
        return cls(**{k: p[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class SearchSettings:
    method: str
    init_population: int
    sample_size: int
    n_childs: int
    n_generations: int
    random_budget: int
    seed: int

    @classmethod
    def from_config(cls, config: dict) -> SearchSettings:
        s = config["search"]
        return cls(**{k: s[k] for k in cls.__dataclass_fields__ if k != "seed"}, seed=config["seed"])

    @property
    def evaluations(self) -> int:
        if self.method == "random":
            return self.random_budget
        return self.init_population + self.n_generations * self.n_childs


class CandidateScorer:
    """Scores architectures inside one warmed-up supernet with one or more proxies."""

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
        for name in proxies:
            get_proxy(name)
        supernet.eval()  # no dropout anywhere; LayerNorm has no running statistics
        for p in supernet.parameters():
            p.requires_grad_(False)
        train, val = dataset.split("train"), dataset.split("val")
        size = data.probe_batch_size
        self.probe_batches = [
            to_device(train.batch(i * size, (i + 1) * size), device) for i in range(data.probe_batches)
        ]
        self.num_dense, self.table_sizes = dataset.num_dense, dataset.table_sizes
        self.embedding_rows = torch.unique(
            torch.cat([b[1] + supernet.stem.offsets for b in self.probe_batches]).flatten()
        )
        if "oneshot" in proxies:
            self.finetune = [
                to_device(b, device) for b in _take(train.batches(size, drop_last=True), data.finetune_steps)
            ]
            self.eval = [to_device(b, device) for b in _take(val.batches(data.eval_batch_size), data.eval_batches)]

    def score(self, arch: Architecture) -> dict[str, float]:
        """All configured proxy scores (with their components), #params and FLOPs per sample."""
        size = standalone_size(arch, self.num_dense, self.table_sizes)
        extras = {**size, "hash": arch.hash(), "oneshot": lambda: self.oneshot(arch)}
        model = PathModel(self.supernet, arch)
        faithful = self.probe.sigeo_mode == "faithful"
        with self._trainable(faithful):
            params, step, restore = self._probe_setup(arch, faithful)
            try:
                ctx = ProbeContext(
                    model, self.probe_batches, _loss, self.probe, params=params, step=step, extras=extras
                )
                scores = score(self.proxies, ctx)
            finally:
                restore()
                self.supernet.zero_grad(set_to_none=True)
        return {**scores, **size}

    @contextlib.contextmanager
    def _trainable(self, faithful: bool) -> Iterator[None]:
        """Gradients on for what is measured: the head only (faithful) or every parameter."""
        wanted = list(self.supernet.head.parameters()) if faithful else list(self.supernet.parameters())
        for p in wanted:
            p.requires_grad_(True)
        try:
            yield
        finally:
            for p in wanted:
                p.requires_grad_(False)

    def _probe_setup(self, arch: Architecture, faithful: bool) -> tuple[dict, Callable | None, Callable[[], None]]:
        """Measured parameters, the between-batch step, and how to undo it."""
        if not faithful:
            return self._regions(arch), None, lambda: None
        head = self.supernet.head
        saved = [p.detach().clone() for p in head.parameters()]
        optimizer = make_optimizer(head, self.data.finetune_lr)
        warmup = self.data.finetune_steps // 10
        calls = [0]

        def step() -> None:  # REFERENCE §4.1.3: lr 1e-8 twice, then the schedule from its start
            t = max(calls[0] - 1, 0)
            lr = 1e-8 + (self.data.finetune_lr - 1e-8) * (t / warmup if warmup and t < warmup else 1.0)
            for group in optimizer.param_groups:
                group["lr"] = lr
            clip_grad_norm(head.parameters())
            optimizer.step()
            calls[0] += 1

        def restore() -> None:
            with torch.no_grad():
                for p, value in zip(head.parameters(), saved, strict=True):
                    p.copy_(value)

        return {"head.weight": head.weight, "head.bias": head.bias}, step, restore

    def _regions(self, arch: Architecture) -> dict[str, Region]:
        """The parameter regions ``arch`` reads, found by one tiny forward pass."""
        dense, ids = self.probe_batches[0][0][:2], self.probe_batches[0][1][:2]
        with torch.no_grad(), record_usage() as usage:
            self.supernet(dense, ids, arch)
        names = {id(p): n for n, p in self.supernet.named_parameters()}
        regions = {names[key]: Region(p, rows, cols) for key, (p, rows, cols) in usage.regions.items()}
        embedding = self.supernet.stem.embedding.weight
        regions["stem.embedding.weight"] = Region(embedding, index=self.embedding_rows)
        return regions

    def oneshot(self, arch: Architecture) -> float:
        """Fine-tune only the head on the shared fine-tuning batches, then val log loss (REFERENCE §4.1)."""
        net, head = self.supernet, self.supernet.head
        saved = [p.detach().clone() for p in head.parameters()]
        try:
            for p in head.parameters():
                p.requires_grad_(True)
            optimizer = make_optimizer(head, self.data.finetune_lr)
            steps = len(self.finetune)
            scheduler = make_scheduler(optimizer, steps, steps // 10)
            for batch in self.finetune:
                with torch.no_grad():
                    features, segments = net.body(batch[0], batch[1], arch)
                optimizer.zero_grad(set_to_none=True)
                loss = logloss(net.head_logits(features, segments), batch[2])
                loss.backward()
                clip_grad_norm(head.parameters())
                optimizer.step()
                scheduler.step()
            total, rows = 0.0, 0
            with torch.no_grad():
                for batch in self.eval:
                    logits = net(batch[0], batch[1], arch)
                    total += float(logloss(logits.double(), batch[2].double())) * len(logits)
                    rows += len(logits)
            return total / rows
        finally:
            with torch.no_grad():
                for p, value in zip(head.parameters(), saved, strict=True):
                    p.copy_(value)
                    p.requires_grad_(False)
                    p.grad = None


def _loss(model: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return logloss(model(batch[0], batch[1]), batch[2])


def _take(iterator, n: int) -> list:
    return [b for _, b in zip(range(n), iterator, strict=False)]


def standalone_size(arch: Architecture, num_dense: int, table_sizes: list[int]) -> dict[str, float]:
    """Dense #params and forward FLOPs per sample of ``arch`` as a standalone network, on the meta device
    (shapes only: no memory, no arithmetic)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = StandaloneNet(arch, num_dense, [2] * len(table_sizes))
        dense, ids = torch.zeros(1, num_dense), torch.zeros(1, len(table_sizes), dtype=torch.long)
        with FlopCounterMode(display=False) as counter:
            model(dense, ids)
    params = sum(p.numel() for p in model.parameters()) - model.stem.embedding.weight.numel()
    return {"params": float(params), "flops": float(counter.get_total_flops())}


# --- records ------------------------------------------------------------------------------------
@dataclass
class Record:
    index: int
    generation: int
    arch: Architecture
    scores: dict[str, float]
    seconds: float


class RecordLog:
    """Append-only ``records.partial.csv``; renamed to ``records.csv`` when the search ends."""

    def __init__(self, path: Path, criterion: str) -> None:
        self.path, self.partial, self.criterion = path, path.with_name(path.stem + ".partial.csv"), criterion
        path.parent.mkdir(parents=True, exist_ok=True)
        self.done: list[dict] = []
        if self.partial.exists():
            with open(self.partial, newline="") as fh:
                rows = list(csv.DictReader(fh))
            self.done = [r for r in rows if r.get("seconds") not in (None, "")]  # a row cut by a kill is redone
        self._fh = None
        self._writer = None

    def replay(self, index: int, arch: Architecture) -> Record | None:
        """The record of evaluation ``index`` if it was made before a restart (same choice, by hash)."""
        if index >= len(self.done):
            return None
        row = self.done[index]
        if row["hash"] != arch.hash():
            raise RuntimeError(f"{self.partial}: row {index} holds another candidate; the search settings changed")
        scores = {k: float(v) for k, v in row.items() if k not in ("index", "generation", "hash", "arch", "seconds")}
        return Record(index, int(row["generation"]), arch, scores, float(row["seconds"]))

    def append(self, record: Record) -> None:
        row = {
            "index": record.index,
            "generation": record.generation,
            "hash": record.arch.hash(),
            "arch": record.arch.to_json(),
            **record.scores,
            "seconds": round(record.seconds, 4),
        }
        if self._writer is None:
            rewrite = self.done
            self._fh = open(self.partial, "w", newline="")  # noqa: SIM115 - closed in finish()
            self._writer = csv.DictWriter(self._fh, fieldnames=list(row), restval="nan", extrasaction="ignore")
            self._writer.writeheader()
            self._writer.writerows(rewrite)
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
) -> list[Record]:
    """Regularized evolution (REFERENCE §4.4) or random search; returns every evaluated candidate."""
    higher = get_proxy(criterion).higher_is_better
    rng = np.random.default_rng(settings.seed)
    space = get_space(space_name)
    history: list[Record] = []
    progress = tqdm(total=settings.evaluations, desc=f"search {criterion}", mininterval=5.0)

    def evaluate(arch: Architecture, generation: int) -> Record:
        index = len(history)
        record = records.replay(index, arch)
        if record is None:
            started = time.perf_counter()
            scores = scorer_fn(arch)
            record = Record(index, generation, arch, scores, time.perf_counter() - started)
            records.append(record)
        history.append(record)
        progress.update()
        return record

    def goodness(record: Record) -> float:
        value = record.scores[criterion]
        if not math.isfinite(value):
            return -math.inf  # NaN and inf rank last, whatever the direction
        return value if higher else -value

    if settings.method == "random":
        for _ in range(settings.random_budget):
            evaluate(sample_architecture(rng, space, num_blocks), 0)
        progress.close()
        return history
    population = deque(
        evaluate(sample_architecture(rng, space, num_blocks), 0) for _ in range(settings.init_population)
    )
    seen = {r.arch.hash() for r in population}
    for g in range(settings.n_generations):
        members = rng.choice(len(population), settings.sample_size, replace=False)
        parent = max((population[int(i)] for i in members), key=goodness)
        mutations = mutation_count(g, settings.n_generations)
        for _ in range(settings.n_childs):
            child = parent.arch
            for _ in range(100):  # keep mutating the child until it is new (REFERENCE §4.4)
                for _ in range(mutations):
                    child = mutate(rng, child)
                if child.hash() not in seen:
                    break
            seen.add(child.hash())
            population.append(evaluate(child, g + 1))
        for _ in range(settings.n_childs):
            population.popleft()
    progress.close()
    return history


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
    from .warmup import WarmupSettings, build_supernet

    dataset = Dataset.open(dataset_dir)
    warm = WarmupSettings.from_config(config)
    supernet = build_supernet(get_space(space_name), dataset, warm)
    supernet.load_state_dict(torch.load(supernet_path, map_location="cpu", weights_only=True))
    supernet.to(device)
    scorer = CandidateScorer(
        supernet, dataset, [proxy], ProbeSettings.from_config(config), ProbeData.from_config(config), device
    )
    records = RecordLog(Path(out_path), proxy)
    if records.done:
        log.info("resuming: %d candidates already scored in %s", len(records.done), records.partial)
    history = run_search(scorer.score, space_name, warm.num_blocks, proxy, SearchSettings.from_config(config), records)
    records.finish()
    return history


# --- export ---------------------------------------------------------------------------------------
def export_top(records_csv: str | os.PathLike, proxy: str, top_k: int, out_dir: str | os.PathLike) -> list[dict]:
    """The ``top_k`` best distinct architectures as reference-format JSON files ``{rank}.json``.

    Distinct by hash: the reference kept a record only when its score differed from the previous
    one, which drops different architectures that happen to tie and keeps duplicates whose scores
    differ by noise. NaN scores rank last. ``test_loss`` holds the minimised criterion, as in the
    reference's files; ``score`` the proxy's own value.
    """
    higher = get_proxy(proxy).higher_is_better
    with open(records_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    best: dict[str, dict] = {}
    for row in rows:
        value = float(row[proxy])
        key = -math.inf if not math.isfinite(value) else (value if higher else -value)
        if row["hash"] not in best or key > best[row["hash"]]["key"]:
            best[row["hash"]] = {"key": key, "row": row, "value": value}
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
