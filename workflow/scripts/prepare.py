"""Rule prepare: raw file -> stratified 8:1:1 split -> memory-mapped arrays + meta.json."""

from pathlib import Path

from sigeo.config import DatasetSpec
from sigeo.data.prepare import PrepareSettings, prepare
from sigeo.data.tabular import prepare_tabular
from sigeo.runner import run


def main() -> None:
    spec = DatasetSpec(**snakemake.params.spec)
    settings = PrepareSettings(
        seed=snakemake.params.seed,
        max_bad_rows=spec.max_bad_rows,
        max_table_size=spec.max_table_size,
    )
    if spec.format == "tabular":
        prepare_tabular(spec.raw_format, spec.raw_files(), Path(snakemake.output.meta).parent, settings)
        return
    teacher_prob = Path(snakemake.input.synthetic) / "teacher_prob.npy" if spec.is_synthetic else None
    prepare(
        spec.raw_format,
        spec.raw_path(),
        Path(snakemake.output.meta).parent,
        settings,
        profile_path=spec.profile_path(),
        teacher_prob_path=teacher_prob,
    )


run(snakemake, main)
