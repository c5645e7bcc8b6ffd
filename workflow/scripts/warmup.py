"""Rule warmup: train the supernet for its warm-up level's share of the data budget (sigeo/warmup.py)."""

from pathlib import Path

from sigeo.io import TrainingOutputs
from sigeo.runner import run
from sigeo.warmup import warm_up


def main() -> None:
    settings, out = snakemake.params.settings, snakemake.output
    with settings.devices.job_device() as device:
        warm_up(
            Path(snakemake.input.meta).parent,
            snakemake.wildcards.space,
            snakemake.params.level,
            settings.warmup,
            TrainingOutputs(out.supernet, out.train_log, out.metrics),
            device,
        )


run(snakemake, main)
