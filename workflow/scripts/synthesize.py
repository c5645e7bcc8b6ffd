"""Rule synthesize: write a synthetic raw data set in its format, with its teacher."""

from pathlib import Path

from sigeo.data.synthetic import generate
from sigeo.runner import run


def main() -> None:
    spec = snakemake.params.settings.spec
    generate(spec.raw_format, spec.synthetic, Path(snakemake.output.folder) / spec.raw_format.file_name)


run(snakemake, main)
