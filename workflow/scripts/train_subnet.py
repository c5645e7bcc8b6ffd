"""Rule train_subnet: the correlation study's ground truth for one subnet (standalone training, test log loss)."""

from pathlib import Path

from sigeo.devices import DeviceSettings
from sigeo.runner import run
from sigeo.study.correlation import sampling_seed, subnet, train_subnet, truth_settings


def main() -> None:
    config = snakemake.params.stage
    devices = DeviceSettings.from_config(config)
    arch = subnet(
        snakemake.wildcards.space,
        config["num_blocks"],
        sampling_seed(config),
        int(snakemake.wildcards.subnet),
        config["space_widths"],
    )
    with devices.job_device() as device:
        train_subnet(
            arch,
            Path(snakemake.input.meta).parent,
            truth_settings(config),
            Path(snakemake.output.metrics).parent,
            device,
        )


run(snakemake, main)
