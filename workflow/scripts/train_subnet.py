"""Rules train_subnet and train_subnet_seed: the correlation study's ground truth for one subnet and one
training seed (standalone training, test log loss); train_subnet is seed 0."""

from pathlib import Path

from sigeo.devices import DeviceSettings
from sigeo.io import TrainingOutputs
from sigeo.runner import run
from sigeo.study.correlation import sampling_seed, subnet, train_subnet, truth_settings


def main() -> None:
    config, wildcards, out = snakemake.params.stage, snakemake.wildcards, snakemake.output
    devices = DeviceSettings.from_config(config)
    arch = subnet(
        wildcards.space, config["num_blocks"], sampling_seed(config), int(wildcards.subnet), config["space_widths"]
    )
    with devices.job_device() as device:
        train_subnet(
            arch,
            Path(snakemake.input.meta).parent,
            truth_settings(config, int(wildcards.get("seed", 0))),
            TrainingOutputs(out.model, out.train_log, out.metrics),
            device,
            out.arch,
        )


run(snakemake, main)
