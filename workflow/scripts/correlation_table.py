"""Rule correlation_table: the ground truth's reliability, rank correlations per proxy and warm-up level,
the summary with each claim's verdict, the plot."""

from sigeo.io import atomic_path
from sigeo.report.plots import save_figure
from sigeo.report.tables import write_table
from sigeo.runner import log, run
from sigeo.study.correlation import (
    claims,
    collect,
    correlation_table,
    divergence_text,
    ground_truth,
    measure_reliability,
    read_learned,
    read_runs,
    reliability_text,
    warmup_figure,
    write_summary,
)


def main() -> None:
    out, params, wildcards, inputs = snakemake.output, snakemake.params, snakemake.wildcards, snakemake.input
    runs = read_runs({(subnet, seed): path for (subnet, seed), path in zip(params.runs, inputs.truth, strict=True)})
    with atomic_path(out.runs, ".csv") as tmp:
        runs.to_csv(tmp, index=False)
    truth = ground_truth(runs)
    data = collect(truth, dict(zip(params.levels, inputs.scores, strict=True)), params.proxies)
    with atomic_path(out.data, ".csv") as tmp:
        data.to_csv(tmp, index=False)
    noise, left_out = measure_reliability(runs, params.bootstrap, params.seed)
    learned = read_learned(dict(zip(params.levels, inputs.warmup, strict=True)))
    table = correlation_table(
        data, params.proxies, params.bootstrap, params.seed, noise=noise, noise_left_out=left_out, learned=learned
    )
    write_table(table, csv=out.table, md=out.table_md, tex=out.table_tex, digits=3)
    verdicts = claims(data, table, noise, params.min_reliability, params.bootstrap, params.seed)
    notes = [reliability_text(noise, left_out, params.min_reliability), divergence_text(runs, truth)]
    title = f"{wildcards.dataset} / {wildcards.space}: proxies vs standalone test log loss"
    write_summary(table, verdicts, notes, title, out.summary_md, out.summary)
    for text in notes:
        log.info("%s", text)
    for verdict in verdicts:
        log.info("claim check: %s", verdict.line())
    save_figure(warmup_figure(table, title), out.plot, out.plot_pdf)


run(snakemake, main)
