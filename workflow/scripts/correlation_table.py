"""Rule correlation_table: rank correlations per proxy and warm-up level, the SiGeo/ZiCo summary, the plot."""

from sigeo.io import atomic_path
from sigeo.report.plots import save_figure
from sigeo.report.tables import write_table
from sigeo.runner import log, run
from sigeo.study.correlation import collect, correlation_table, warmup_figure, write_summary


def main() -> None:
    out, params, wildcards = snakemake.output, snakemake.params, snakemake.wildcards
    data = collect(snakemake.input.truth, dict(zip(params.levels, snakemake.input.scores, strict=True)), params.proxies)
    with atomic_path(out.data, ".csv") as tmp:
        data.to_csv(tmp, index=False)
    table = correlation_table(data, params.proxies, params.bootstrap, params.seed)
    write_table(table, csv=out.table, md=out.table_md, tex=out.table_tex, digits=3)
    title = f"{wildcards.dataset} / {wildcards.space}: proxies vs standalone test log loss"
    check = write_summary(table, title, out.summary_md, out.summary)
    log.info("fidelity check: %s", check.text)
    save_figure(warmup_figure(table, title), out.plot, out.plot_pdf)


run(snakemake, main)
