"""Rule export_model: the selected model as a self-contained torch.export program (model.pt2)."""

from sigeo.predict import export_model
from sigeo.runner import run

run(snakemake, lambda: export_model(snakemake.input.best, snakemake.input.meta, snakemake.output.program))
