"""Rule train_baseline: a logistic regression or a published NASRecNet, trained like the searched models."""

from pathlib import Path

from sigeo.baselines import train_baseline
from sigeo.devices import DeviceSettings
from sigeo.final import FinalSettings
from sigeo.runner import run
from sigeo.space.choice import Architecture


def main() -> None:
    config = snakemake.params.stage
    devices = DeviceSettings.from_config(config)
    arch_file = getattr(snakemake.input, "arch", None)  # a NASRecNet's published architecture
    arch = Architecture.load(arch_file) if arch_file else None
    with devices.job_device() as device:
        train_baseline(
            snakemake.wildcards.baseline,
            Path(snakemake.input.meta).parent,
            FinalSettings.from_config(config),
            Path(snakemake.output.metrics).parent,
            device,
            arch,
        )


run(snakemake, main)
