from dataclasses import asdict

from sigeo.config import (
    baseline_names,
    check_proxies,
    dataset_config,
    datasets,
    gpu_conda_env,
    level_name,
    published_architecture,
    repeat_index,
    repeat_seed,
    repeat_segment,
    search_plan,
    validate_config,
)

# Start-up checks first, before the heavy imports: a bad config fails in seconds, naming its key.
validate_config(config)

from sigeo.data.store import PARTS, SPLITS
from sigeo.resources import standalone_mem_mb, supernet_mem_mb

check_proxies(config)
DATASETS = datasets(config)
SPACES = config["spaces"]
LEVELS = {level_name(level): level for level in config["warmup_levels"]}
PROXIES = config["proxies"]
SEARCHES = search_plan(config)
RANKS = range(config["search"]["top_k"])
# Path segments of the search repeats (wildcard {repeat}): empty for the first, then a subfolder r1, r2, ...
REPEATS = [repeat_segment(i) for i in range(config["search"]["repeats"])]
BASELINES = baseline_names(config)
# The conda environment of the rules that train or score networks (under --sdm conda).
GPU_ENV = str(gpu_conda_env(config, workflow.basedir))
STAGE_KEYS = {
    "warmup": ("seed", "num_blocks", "space_widths", "data", "warmup", "devices"),
    "search": (
        "seed",
        "num_blocks",
        "space_widths",
        "data",
        "warmup",
        "proxy",
        "search",
        "devices",
    ),
    "train_final": ("seed", "data", "final", "devices"),
}
# Paths that several rules name, as wildcard patterns, each spelled once: the producing rule declares
# the pattern itself as its output (or benchmark), its readers fill it in (expand, format, run_paths).
DATA_META = "results/data/{dataset}/meta.json"
SUPERNET = "results/supernet/{dataset}/{space}/w{level}/supernet.pt"
WARMUP_METRICS = "results/supernet/{dataset}/{space}/w{level}/metrics.json"
WARMUP_BENCHMARK = "benchmarks/warmup/{dataset}/{space}/w{level}.tsv"
SEARCH_BENCHMARK = "benchmarks/search/{dataset}/{space}/w{level}/{proxy}{repeat}.tsv"
TRAINVAL_METRICS = (
    "results/final/{dataset}/{space}/w{level}/{proxy}{repeat}/trainval/metrics.json"
)
BEST = "results/final/{dataset}/{space}/w{level}/{proxy}{repeat}/best.json"
BASELINE_METRICS = "results/baselines/{dataset}/{baseline}/metrics.json"
BASELINE_BENCHMARK = "benchmarks/train_baseline/{dataset}/{baseline}.tsv"
SEARCH_RESULTS = "results/tables/search_results.csv"


# Only what each job reads, so growing num_subnets or editing the proxy list keeps trained subnets up to date.
CORRELATION_KEYS = {
    "truth": ("seed", "epochs", "max_train_rows"),
    "score": ("seed", "num_subnets"),
}


def dataset_spec(wildcards):
    """The dataset's settings as a plain dict (Snakemake params must be picklable)."""
    return asdict(DATASETS[wildcards.dataset])


def prepare_inputs(wildcards):
    """Raw inputs of a prepare job (a synthetic folder, downloads, or local paths that must exist)."""
    spec = DATASETS[wildcards.dataset]
    spec.check_local_files()
    if spec.is_synthetic:
        return {"synthetic": spec.synthetic_dir}
    inputs = {"raw": spec.raw_files()}
    if spec.profile_path():
        inputs["profile"] = spec.profile_path()
    return inputs


def download_param(key):
    """URL or sha256 of the file a download job fetches."""
    index = {"url": 0, "sha256": 1}[key]

    def lookup(wildcards):
        return DATASETS[wildcards.dataset].downloads()[wildcards.file][index]

    return lookup


# Keys that change how a job starts or which jobs exist, not what a job computes: left out of its params.
NOT_PARAMS = {"devices": ("conda_env_gpu",), "final": ("retrain_on_trainval",)}


def sections(wildcards, keys):
    """The config sections ``keys`` as the job's data set sees them (its overrides applied): a job's
    params, so editing another section, or another data set's overrides, does not rerun it. Without
    devices.conda_env_gpu (how a GPU job starts; under --sdm conda Snakemake's software-env trigger
    still reruns the jobs whose environment changed) and final.retrain_on_trainval (it only adds a
    job: turning it on keeps every training up to date).
    """
    effective = dataset_config(config, wildcards.dataset)
    return {
        key: (
            {k: v for k, v in effective[key].items() if k not in NOT_PARAMS[key]}
            if key in NOT_PARAMS
            else effective[key]
        )
        for key in keys
    }


def stage_config(stage):
    """The params function of a stage: the config sections it reads, for the job's data set."""

    def params(wildcards):
        return sections(wildcards, STAGE_KEYS[stage])

    return params


def repeat_stage(stage):
    """Like stage_config, with the seed of the job's search repeat (its {repeat} wildcard)."""

    def params(wildcards):
        seed = repeat_seed(config["seed"], repeat_index(wildcards.repeat))
        return {**sections(wildcards, STAGE_KEYS[stage]), "seed": seed}

    return params


def eval_batch_size(wildcards):
    """The final section's evaluation batch of the job's data set."""
    return sections(wildcards, ["final"])["final"]["eval_batch_size"]


def truth_stage(wildcards):
    """A ground-truth training's params: the final training's sections and the study's keys."""
    return {
        **sections(wildcards, STAGE_KEYS["train_final"]),
        "num_blocks": config["num_blocks"],
        "space_widths": config["space_widths"],
        "correlation": {k: config["correlation"][k] for k in CORRELATION_KEYS["truth"]},
    }


def score_stage(wildcards):
    """A scoring job's params: the sections the proxies read and the study's keys."""
    keys = ("seed", "num_blocks", "space_widths", "data", "warmup", "proxy", "devices")
    return {
        **sections(wildcards, keys),
        "correlation": {k: config["correlation"][k] for k in CORRELATION_KEYS["score"]},
    }


def baseline_inputs(wildcards):
    """A baseline's inputs: the prepared data set, and for a NASRecNet its published architecture."""
    inputs = {"meta": DATA_META.format(dataset=wildcards.dataset)}
    if wildcards.baseline.startswith("nasrec_"):
        fmt = DATASETS[wildcards.dataset].format
        space = wildcards.baseline.removeprefix("nasrec_")
        inputs["arch"] = str(published_architecture(fmt, space))
    return inputs


def run_paths(pattern, runs):
    """A path per search run (dataset, space, level, proxy, repeat index): ``pattern`` (one of the
    patterns above) with the run's wildcards, {repeat} the repeat's path segment; fields a pattern does
    not name are left out."""
    return [
        pattern.format(
            dataset=dataset,
            space=space,
            level=level,
            proxy=proxy,
            repeat=REPEATS[repeat],
        )
        for dataset, space, level, proxy, repeat in runs
    ]


def warmup_mem_mb(wildcards):
    """Memory of a warm-up job: supernet weights, gradients and Adagrad state, plus headroom."""
    return supernet_mem_mb(DATASETS[wildcards.dataset], wildcards.space, config)


def search_mem_mb(wildcards):
    """Memory of a search job: the supernet's weights plus headroom (no gradients, no optimizer)."""
    return supernet_mem_mb(
        DATASETS[wildcards.dataset], wildcards.space, config, copies=1
    )


def retrained_metrics(wildcards):
    """select_best's wait for the winner's retraining on train + val (none unless final.retrain_on_trainval)."""
    if not dataset_config(config, wildcards.dataset)["final"]["retrain_on_trainval"]:
        return []
    return [TRAINVAL_METRICS.format(**dict(wildcards.items()))]


def final_mem_mb(wildcards):
    return standalone_mem_mb(DATASETS[wildcards.dataset])


def all_targets():
    return [
        *expand(DATA_META, dataset=DATASETS),
        *rules.theory_aggregate.output,
        *expand(WARMUP_METRICS, dataset=DATASETS, space=SPACES, level=LEVELS),
        *[
            BEST.format(
                dataset=dataset, space=space, level=level, proxy=proxy, repeat=repeat
            )
            for dataset in DATASETS
            for space in SPACES
            for level, proxy in SEARCHES
            for repeat in REPEATS
        ],
        *expand(BASELINE_METRICS, dataset=DATASETS, baseline=BASELINES),
        *expand(
            "results/tables/correlation_{dataset}_{space}.csv",
            dataset=DATASETS,
            space=SPACES,
        ),
        SEARCH_RESULTS,
        "results/tables/search_summary.md",
        *expand("results/plots/{dataset}_logloss_vs_cost.png", dataset=DATASETS),
    ]
