"""Rule prepare: raw file -> stratified 8:1:1 split -> memory-mapped arrays + meta.json."""

from pathlib import Path

from sigeo.data.prepare import prepare
from sigeo.data.tabular import prepare_tabular
from sigeo.runner import run


def main() -> None:
    spec, settings = snakemake.params.settings.spec, snakemake.params.settings.prepare
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
