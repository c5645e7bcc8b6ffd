"""Rule search_results: the selected architecture of every search, its metrics, size and search cost."""

from sigeo.report.results import runs_from, search_results
from sigeo.report.tables import write_table
from sigeo.runner import run


def main() -> None:
    out = snakemake.output
    files = {
        **snakemake.params.benchmarks,
        **{name: snakemake.input[name] for name in ("best", "warmup_metrics", "meta")},
    }
    runs = runs_from(snakemake.params.runs, snakemake.params.levels, files)
    write_table(search_results(runs), csv=out.table, md=out.table_md, tex=out.table_tex, digits=4)


run(snakemake, main)
