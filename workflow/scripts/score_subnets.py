"""Rule score_subnets: every proxy of the correlation study on every subnet, inside one level's supernet."""

from pathlib import Path

from sigeo.devices import DeviceSettings
from sigeo.runner import run
from sigeo.study.correlation import sampling_seed, score_subnets, subnets


def main() -> None:
    config = snakemake.params.stage
    devices = DeviceSettings.from_config(config)
    space = snakemake.wildcards.space
    archs = subnets(
        space,
        config["num_blocks"],
        sampling_seed(config),
        config["correlation"]["num_subnets"],
        config["space_widths"],
    )
    with devices.job_device() as device:
        score_subnets(
            snakemake.input.supernet,
            Path(snakemake.input.meta).parent,
            space,
            archs,
            snakemake.params.proxies,
            config,
            snakemake.output.scores,
            device,
        )


run(snakemake, main)
