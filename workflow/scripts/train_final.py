"""Rule train_final: train one exported architecture from scratch; val and test metrics and its weights."""

from pathlib import Path

from sigeo.devices import DeviceSettings
from sigeo.final import FinalSettings, train_final
from sigeo.io import TrainingOutputs
from sigeo.runner import run
from sigeo.space.choice import Architecture


def main() -> None:
    config, out = snakemake.params.stage, snakemake.output
    devices = DeviceSettings.from_config(config)
    arch = Architecture.load(snakemake.input.arch)
    with devices.job_device() as device:
        train_final(
            arch,
            Path(snakemake.input.meta).parent,
            FinalSettings.from_config(config),
            TrainingOutputs(out.model, out.train_log, out.metrics),
            device,
        )


run(snakemake, main)
