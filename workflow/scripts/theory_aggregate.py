"""Rule theory_aggregate: correlation table, comparison with the README, and the two figures."""

import pandas as pd

from sigeo.io import atomic_path
from sigeo.report.plots import save_figure
from sigeo.report.tables import write_table
from sigeo.runner import log, run
from sigeo.study.theory_report import (
    correlation_table,
    fidelity_checks,
    readme_comparison,
    scatter_figure,
    warmup_figure,
    write_comparison,
)


def main() -> None:
    out = snakemake.output
    runs = pd.concat([pd.read_csv(path) for path in snakemake.input], ignore_index=True)
    with atomic_path(out.runs, ".csv") as tmp:
        runs.to_csv(tmp, index=False)
    table = correlation_table(runs)
    write_table(table, csv=out.table, md=out.table_md, tex=out.table_tex, digits=2)
    checks = fidelity_checks(runs, seed=snakemake.params.seed)
    write_comparison(readme_comparison(table), checks, out.readme_csv, out.readme_md, out.readme)
    for check in checks:
        log.info("fidelity check: %s", check.line())
    save_figure(scatter_figure(runs, table), out.scatter, out.scatter_pdf)
    save_figure(warmup_figure(table), out.warmup, out.warmup_pdf)


run(snakemake, main)
