"""Rule theory_width: train every repeat of one hidden width, probing at each warm-up level."""

from sigeo.io import atomic_path
from sigeo.runner import log, run
from sigeo.study.mnist import load_digits
from sigeo.study.theory import run_width


def main() -> None:
    settings = snakemake.params.settings.theory
    runs = run_width(
        load_digits(snakemake.input[0]), int(snakemake.wildcards.width), settings, snakemake.params.settings.probe
    )
    with atomic_path(snakemake.output[0], ".csv") as tmp:
        runs.to_csv(tmp, index=False)
    log.info(
        "width %s: %d runs, test loss %.3f–%.3f",
        snakemake.wildcards.width,
        settings.repeats,
        runs["test_loss"].min(),
        runs["test_loss"].max(),
    )


run(snakemake, main)
