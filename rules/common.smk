from dataclasses import asdict

from sigeo.config import datasets, validate_config
from sigeo.data.store import SPLITS

validate_config(config)

DATASETS = datasets(config)


def dataset_spec(wildcards):
    """The dataset's settings as a plain dict (Snakemake params must be picklable)."""
    return asdict(DATASETS[wildcards.dataset])


def prepare_inputs(wildcards):
    """Raw inputs of a prepare job (a synthetic folder, downloads, or local paths)."""
    spec = DATASETS[wildcards.dataset]
    if spec.is_synthetic:
        return {"synthetic": spec.synthetic_dir}
    inputs = {"raw": spec.raw_path()}
    if spec.profile_path():
        inputs["profile"] = spec.profile_path()
    return inputs


def download_param(key):
    """URL or sha256 of the file a download job fetches."""
    index = {"url": 0, "sha256": 1}[key]

    def lookup(wildcards):
        return DATASETS[wildcards.dataset].downloads()[wildcards.file][index]

    return lookup


def all_targets():
    return [
        *expand("results/data/{dataset}/meta.json", dataset=DATASETS),
        *rules.theory_aggregate.output,
    ]
