"""Rule export: the best distinct architectures of a search as reference-format JSON files."""

from pathlib import Path

from sigeo.runner import run
from sigeo.search import export_top

run(
    snakemake,
    lambda: export_top(
        snakemake.input.records,
        snakemake.wildcards.proxy,
        snakemake.params.top_k,
        Path(snakemake.output.top[0]).parent,
        snakemake.params.export_from,
        snakemake.params.history_top_k,
    ),
)
