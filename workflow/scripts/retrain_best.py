"""Rule retrain_best: the architecture select_best picks, trained again on train + val for the epochs its
train-only run took, and tested; the model the paper reports."""

import shutil
from pathlib import Path

from sigeo.final import Replay, retrain_final, select_best
from sigeo.io import TrainingOutputs, read_json
from sigeo.runner import run
from sigeo.space.choice import Architecture


def main() -> None:
    settings, inputs, out = snakemake.params.settings, snakemake.input, snakemake.output
    rank = select_best(inputs.metrics, inputs.archs)["rank"]
    selected = inputs.metrics[rank]
    replay = Replay.of(read_json(selected), selected)
    shutil.copyfile(inputs.archs[rank], out.arch)
    with settings.devices.job_device() as device:
        retrain_final(
            Architecture.load(inputs.archs[rank]),
            Path(inputs.meta).parent,
            settings.final,
            replay,
            TrainingOutputs(out.model, out.train_log, out.metrics),
            device,
        )


run(snakemake, main)
