"""Rule search: regularized evolution (or random search) scored by one proxy inside one supernet."""

from pathlib import Path

from sigeo.runner import run
from sigeo.search import search


def main() -> None:
    settings = snakemake.params.settings
    with settings.devices.job_device() as device:
        search(
            snakemake.input.supernet,
            Path(snakemake.input.meta).parent,
            snakemake.wildcards.space,
            snakemake.wildcards.proxy,
            settings,
            snakemake.output.records,
            device,
        )


run(snakemake, main)
