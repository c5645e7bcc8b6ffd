"""Rule train_baseline: a logistic regression or a published NASRecNet, trained like the searched models."""

from pathlib import Path

from sigeo.baselines import train_baseline
from sigeo.devices import DeviceSettings
from sigeo.final import FinalSettings
from sigeo.io import TrainingOutputs
from sigeo.runner import run
from sigeo.space.choice import Architecture


def main() -> None:
    config, out = snakemake.params.stage, snakemake.output
    devices = DeviceSettings.from_config(config)
    arch_file = getattr(snakemake.input, "arch", None)  # a NASRecNet's published architecture
    arch = Architecture.load(arch_file) if arch_file else None
    with devices.job_device() as device:
        train_baseline(
            snakemake.wildcards.baseline,
            Path(snakemake.input.meta).parent,
            FinalSettings.from_config(config),
            TrainingOutputs(out.model, out.train_log, out.metrics),
            device,
            arch,
        )


run(snakemake, main)
