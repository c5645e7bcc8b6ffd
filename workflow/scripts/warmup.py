"""Rule warmup: train the supernet for its warm-up level's share of the data budget (sigeo/warmup.py)."""

from pathlib import Path

from sigeo.devices import DeviceSettings
from sigeo.io import TrainingOutputs
from sigeo.runner import run
from sigeo.warmup import WarmupSettings, warm_up


def main() -> None:
    config, out = snakemake.params.stage, snakemake.output
    devices = DeviceSettings.from_config(config)
    with devices.job_device() as device:
        warm_up(
            Path(snakemake.input.meta).parent,
            snakemake.wildcards.space,
            snakemake.params.level,
            WarmupSettings.from_config(config),
            TrainingOutputs(out.supernet, out.train_log, out.metrics),
            device,
        )


run(snakemake, main)
