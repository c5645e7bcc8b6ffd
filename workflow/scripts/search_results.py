"""Rule search_results: every search repeat's selected architecture and the baselines, with their metrics,
size and cost; the mean and spread per method; claim (d)'s verdict in the summary."""

from sigeo.io import write_text
from sigeo.report.results import baselines_from, method_summary, runs_from, search_results, search_summary
from sigeo.report.tables import write_table
from sigeo.runner import run


def main() -> None:
    out, inputs, params = snakemake.output, snakemake.input, snakemake.params
    files = {**params.benchmarks, **{name: inputs[name] for name in ("best", "warmup_metrics", "meta")}}
    runs = runs_from(params.runs, params.levels, files)
    baselines = baselines_from(
        params.baselines,
        {"metrics": inputs.baseline_metrics, "benchmark": params.baseline_benchmarks, "meta": inputs.baseline_meta},
    )
    table = search_results(runs, baselines)
    write_table(table, csv=out.table)
    write_table(method_summary(table), md=out.table_md, tex=out.table_tex, digits=4)
    write_text(out.summary, search_summary(table, params.margin))


run(snakemake, main)
