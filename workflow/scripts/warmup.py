"""Rule warmup: train the supernet on the first floor(level * N_train) training rows."""

from pathlib import Path

from sigeo.devices import DeviceSettings, assigned_device
from sigeo.runner import run
from sigeo.warmup import WarmupSettings, warm_up


def main() -> None:
    config = snakemake.params.stage
    devices = DeviceSettings.from_config(config)
    with assigned_device(devices.lock_dir, devices.lock_timeout_s) as device:
        warm_up(
            Path(snakemake.input.meta).parent,
            snakemake.wildcards.space,
            snakemake.params.level,
            WarmupSettings.from_config(config),
            Path(snakemake.output.supernet).parent,
            device,
        )


run(snakemake, main)
