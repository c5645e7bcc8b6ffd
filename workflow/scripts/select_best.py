"""Rule select_best: the exported architecture with the lowest validation log loss (and, with
final.retrain_on_trainval, its retraining on train + val as the found model)."""

from sigeo.final import select_best
from sigeo.io import write_json
from sigeo.runner import run


def main() -> None:
    inputs = snakemake.input
    retrained = inputs.retrained[0] if inputs.retrained else None
    write_json(snakemake.output.best, select_best(inputs.metrics, inputs.archs, retrained, inputs.models))


run(snakemake, main)
