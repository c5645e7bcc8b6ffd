"""Rule select_best: the exported architecture with the lowest validation log loss."""

from sigeo.final import select_best
from sigeo.io import write_json
from sigeo.runner import run

run(snakemake, lambda: write_json(snakemake.output.best, select_best(snakemake.input.metrics, snakemake.input.archs)))
