"""Rule train_final: train one exported architecture from scratch; val and test metrics and its weights."""

from pathlib import Path

from sigeo.final import train_final
from sigeo.io import TrainingOutputs
from sigeo.runner import run
from sigeo.space.choice import Architecture


def main() -> None:
    settings, out = snakemake.params.settings, snakemake.output
    arch = Architecture.load(snakemake.input.arch)
    with settings.devices.job_device() as device:
        train_final(
            arch,
            Path(snakemake.input.meta).parent,
            settings.final,
            TrainingOutputs(out.model, out.train_log, out.metrics),
            device,
        )


run(snakemake, main)
