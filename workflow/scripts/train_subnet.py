"""Rules train_subnet and train_subnet_seed: the correlation study's ground truth for one subnet and one
training seed (standalone training, test log loss); train_subnet is seed 0."""

from pathlib import Path

from sigeo.io import TrainingOutputs
from sigeo.runner import run
from sigeo.study.correlation import subnet, train_subnet, training_seed


def main() -> None:
    settings, wildcards, out = snakemake.params.settings, snakemake.wildcards, snakemake.output
    arch = subnet(
        wildcards.space, settings.num_blocks, settings.subnet_seed, int(wildcards.subnet), settings.space_widths
    )
    with settings.devices.job_device() as device:
        train_subnet(
            arch,
            Path(snakemake.input.meta).parent,
            training_seed(settings.truth, int(wildcards.get("seed", 0))),
            TrainingOutputs(out.model, out.train_log, out.metrics),
            device,
            out.arch,
        )


run(snakemake, main)
