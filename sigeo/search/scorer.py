"""Scoring a candidate inside the warmed-up supernet: the shared batches, the proxies, the one-shot head.

Every candidate is scored in the supernet's own process with inherited weights: the probe, one-shot
fine-tuning and evaluation batches are read once (:func:`scoring_batches`) and shared, so every
candidate sees the same data, and building a candidate copies only the weight regions it reads.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.store import Dataset, Split, batch_ranges
from ..devices import device_failures
from ..errors import ConfigError
from ..proxies import ProbeContext, ProbeSettings, get_proxy, score
from ..proxies.synflow import unit_inputs
from ..space.choice import Architecture
from ..space.subnet import standalone_size
from ..space.supernet import Candidate, SuperNet
from ..train import clip_grad_norm, logloss, make_optimizer, make_scheduler, to_device

#: Size columns of every record: dense #params, FLOPs per sample as torch's flop counter counts them
#: (2 per multiply-add, every block) and NASRec's MFLOPs (multiply-adds of what reaches the logit).
SIZE_COLUMNS = ("params", "flops_2x_all_blocks", "mflops_nasrec")


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
    shards: int


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
