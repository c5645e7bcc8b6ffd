"""Rule warmup: train the supernet for its warm-up level's share of the data budget (sigeo/warmup.py)."""

from pathlib import Path

from sigeo.devices import DeviceSettings
from sigeo.runner import run
from sigeo.warmup import WarmupSettings, warm_up


def main() -> None:
    config = snakemake.params.stage
    devices = DeviceSettings.from_config(config)
    with devices.job_device() as device:
        warm_up(
            Path(snakemake.input.meta).parent,
            snakemake.wildcards.space,
            snakemake.params.level,
            WarmupSettings.from_config(config),
            Path(snakemake.output.supernet).parent,
            device,
        )


run(snakemake, main)
