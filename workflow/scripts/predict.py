"""Rule predict: the selected model's click probability for every row of the test split."""

from pathlib import Path

from sigeo.predict import load_model, predict_split
from sigeo.runner import run


def main() -> None:
    model = load_model(snakemake.input.best, snakemake.input.meta)
    meta_dir = Path(snakemake.input.meta).parent
    predict_split(model, meta_dir, "test", snakemake.output.predictions, snakemake.params.batch_size)


run(snakemake, main)
