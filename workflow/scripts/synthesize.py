"""Rule synthesize: write a synthetic raw data set in its format, with its teacher."""

from pathlib import Path

from sigeo.config import DatasetSpec
from sigeo.data.synthetic import SyntheticSpec, generate
from sigeo.runner import run


def main() -> None:
    spec = DatasetSpec(**snakemake.params.spec)
    out = Path(snakemake.output.folder)
    generate(spec.raw_format, SyntheticSpec(**spec.synthetic), out / spec.raw_format.file_name, spec.max_table_size)


run(snakemake, main)
