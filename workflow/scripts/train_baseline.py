"""Rule train_baseline: a logistic regression or a published NASRecNet, trained like the searched models."""

from pathlib import Path

from sigeo.baselines import train_baseline
from sigeo.io import TrainingOutputs
from sigeo.runner import run
from sigeo.space.choice import Architecture


def main() -> None:
    settings, out = snakemake.params.settings, snakemake.output
    arch_file = getattr(snakemake.input, "arch", None)  # a NASRecNet's published architecture
    arch = Architecture.load(arch_file) if arch_file else None
    with settings.devices.job_device() as device:
        train_baseline(
            snakemake.wildcards.baseline,
            Path(snakemake.input.meta).parent,
            settings.final,
            TrainingOutputs(out.model, out.train_log, out.metrics),
            device,
            arch,
        )


run(snakemake, main)
