"""Rule search_plot: test log loss against search cost for one data set (the paper's points beside it)."""

import pandas as pd

from sigeo.report.plots import save_figure
from sigeo.report.results import cost_figure, paper_points
from sigeo.runner import run


def main() -> None:
    dataset, params = snakemake.wildcards.dataset, snakemake.params
    table = pd.read_csv(snakemake.input[0])
    rows = table[table["dataset"] == dataset]
    figure = cost_figure(rows, dataset, paper_points(params.format, params.synthetic))
    save_figure(figure, snakemake.output.png, snakemake.output.pdf)


run(snakemake, main)
