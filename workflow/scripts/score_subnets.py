"""Rule score_subnets: every proxy of the correlation study on every subnet, inside one level's supernet."""

from pathlib import Path

from sigeo.runner import run
from sigeo.study.correlation import score_subnets, subnets


def main() -> None:
    settings, space = snakemake.params.settings, snakemake.wildcards.space
    warmup = settings.warmup
    archs = subnets(space, warmup.num_blocks, settings.subnet_seed, settings.num_subnets, warmup.space_widths)
    with settings.devices.job_device() as device:
        score_subnets(
            snakemake.input.supernet,
            Path(snakemake.input.meta).parent,
            space,
            archs,
            snakemake.params.proxies,
            settings,
            snakemake.output.scores,
            device,
        )


run(snakemake, main)
