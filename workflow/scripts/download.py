"""Rule download: fetch one raw file and verify its sha256 before it becomes visible."""

from sigeo.data.download import download
from sigeo.runner import run

run(snakemake, lambda: download(snakemake.params.url, snakemake.params.sha256, snakemake.output[0]))
