"""Rule synthesize: write a synthetic raw data set in its format, with its teacher."""

from pathlib import Path

from sigeo.data.synthetic import generate
from sigeo.runner import run


def main() -> None:
    spec = snakemake.params.settings.spec
    raw_path = Path(snakemake.output.folder) / spec.raw_format.file_name
    generate(spec.raw_format, spec.synthetic, raw_path, spec.max_table_size)


run(snakemake, main)
