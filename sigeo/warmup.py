"""Supernet warm-up at one warm-up level: train on the first floor(p * N_train) training rows.

Level 0 saves the initialised supernet (the reference cannot produce it: zero steps trip its
schedule's assertion). ``val`` holds the metrics of random subnets of the warmed-up supernet, a
fresh path per batch, as the reference evaluates it; ``val_full_path`` those of the full path,
which is what short warm-ups mostly train (the full-path mixing of REFERENCE §3.1).
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from .data.store import Dataset
from .io import atomic_path, write_json
from .space.choice import SearchSpace, full_path, get_space
from .space.sampler import PathSampler
from .space.supernet import SuperNet
from .train import Checkpointer, TrainSettings, device_name, evaluate, param_count, to_device, train_loop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmupSettings:
    batch_size: int
    lr: float
    strategy: str
    anypath_choice: str
    use_layernorm: bool
    full_path_steps: int
    weight_sharing: str
    eval_batch_size: int
    eval_rows: int | None
    checkpoint_minutes: float
    log_every: int
    num_blocks: int
    seed: int
    mixed_precision: bool = False
    space_widths: dict[str, list[int]] | None = None  # the config's space_widths (None: the paper's widths)

    @classmethod
    def from_config(cls, config: dict) -> WarmupSettings:
        w = config["warmup"]
        return cls(
            **{k: w[k] for k in ("batch_size", "lr", "strategy", "anypath_choice", "use_layernorm", "full_path_steps")},
            **{k: w[k] for k in ("weight_sharing", "eval_batch_size", "eval_rows", "checkpoint_minutes", "log_every")},
            num_blocks=config["num_blocks"],
            seed=config["seed"],
            mixed_precision=config["devices"]["mixed_precision"],
            space_widths=config.get("space_widths"),
        )


def build_supernet(space: SearchSpace, dataset: Dataset, settings: WarmupSettings) -> SuperNet:
    """The supernet for this data set, initialised from the config's seed (same init at every level)."""
    torch.manual_seed(settings.seed)
    return SuperNet(
        space,
        dataset.num_dense,
        dataset.table_sizes,
        num_blocks=settings.num_blocks,
        use_layernorm=settings.use_layernorm,
        weight_sharing=settings.weight_sharing,
    )


def warmup_rows(level: float, train_rows: int) -> int:
    return math.floor(level * train_rows)


def warm_up(
    dataset_dir: str | Path,
    space_name: str,
    level: float,
    settings: WarmupSettings,
    out_dir: str | Path,
    device: torch.device,
) -> dict:
    """Warm up and write ``supernet.pt``, ``train_log.csv`` and ``metrics.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    dataset = Dataset.open(dataset_dir)
    space = get_space(space_name, settings.space_widths)
    net = build_supernet(space, dataset, settings).to(device)
    train = dataset.split("train")
    rows = warmup_rows(level, len(train))
    steps = rows // settings.batch_size
    sampler = PathSampler(
        space, settings.num_blocks, settings.strategy, settings.anypath_choice, settings.full_path_steps, settings.seed
    )
    loop = TrainSettings(settings.lr, settings.batch_size, checkpoint_minutes=settings.checkpoint_minutes,
                         log_every=settings.log_every, mixed_precision=settings.mixed_precision)  # fmt: skip
    checkpointer = Checkpointer(out_dir / "resume.pt", settings.checkpoint_minutes * 60)
    log.info("warm-up level %s: %d of %d training rows, %d steps of %d on %s", level, rows, len(train), steps,
             settings.batch_size, device_name(device))  # fmt: skip
    state = train_loop(
        net,
        lambda batch, step: net(batch[0], batch[1], sampler.sample(step)),
        lambda first: (
            to_device(b, device) for b in train.head(rows).batches(settings.batch_size, first, drop_last=True)
        ),
        steps,
        loop,
        device,
        checkpointer,
        extra_state=lambda: {"sampler": sampler.state()},
        restore_extra=lambda extra: sampler.restore(extra["sampler"]),
    )
    net.eval()
    eval_sampler = PathSampler(
        space, settings.num_blocks, settings.strategy, settings.anypath_choice, 0, settings.seed + 1
    )
    val = evaluate(
        lambda batch: net(batch[0], batch[1], eval_sampler.sample()),
        dataset.split("val"),
        settings.eval_batch_size,
        device,
        settings.eval_rows,
    )
    widest = full_path(space, settings.num_blocks)
    val_full = evaluate(
        lambda batch: net(batch[0], batch[1], widest),
        dataset.split("val"),
        settings.eval_batch_size,
        device,
        settings.eval_rows,
    )
    with atomic_path(out_dir / "supernet.pt", ".pt") as tmp:
        torch.save(net.state_dict(), tmp)
    write_log(out_dir / "train_log.csv", state.log)
    metrics = {
        "level": level,
        "space": space.name,
        "rows": state.rows,
        "steps": state.step,
        "wall_seconds": round(state.seconds, 3),
        "device": device_name(device),
        "val": val,
        "val_full_path": val_full,
        **param_count(net),
    }
    write_json(out_dir / "metrics.json", metrics)
    checkpointer.remove()
    return metrics


def write_log(path: Path, rows: list[dict]) -> None:
    with atomic_path(path, ".csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["step", "rows", "loss", "lr", "seconds"])
        writer.writeheader()
        writer.writerows(rows)
