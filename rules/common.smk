from sigeo.config import (
    PrepareJob,
    ScoreJob,
    SearchJob,
    SubnetJob,
    SynthesizeJob,
    TrainJob,
    WarmupJob,
    baseline_names,
    gpu_conda_env,
    job_settings,
    level_name,
    load_settings,
    published_architecture,
    repeat_index,
    repeat_segment,
    search_plan,
)

# The start-up checks (schema, then every check across keys), naming the key of a bad config, then
# the typed settings of every job; the config itself is validated in place, so it holds every default.
SETTINGS = load_settings(config)

from sigeo.data.store import PARTS, SPLITS
from sigeo.resources import standalone_mem_mb, supernet_mem_mb

DATASETS = {name: settings.spec for name, settings in SETTINGS.datasets.items()}
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


def job_params(job):
    """A rule's params function: ``job`` (one of sigeo.config's ``*Job``), the settings its stage
    computes with, of the job's data set (its overrides applied) and search repeat (its {repeat}
    wildcard, where it has one), so editing another section, or another data set's overrides, does
    not rerun it."""

    def params(wildcards):
        repeat = repeat_index(wildcards.get("repeat", ""))
        return job_settings(job, SETTINGS.dataset(wildcards.dataset, repeat))

    return params


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


def eval_batch_size(wildcards):
    """The final training's evaluation batch of the job's data set."""
    return SETTINGS.dataset(wildcards.dataset).final.eval_batch_size


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
    settings = SETTINGS.dataset(wildcards.dataset)
    return supernet_mem_mb(settings.spec, wildcards.space, settings.warmup)


def search_mem_mb(wildcards):
    """Memory of a search job: the supernet's weights plus headroom (no gradients, no optimizer)."""
    settings = SETTINGS.dataset(wildcards.dataset)
    return supernet_mem_mb(settings.spec, wildcards.space, settings.warmup, copies=1)


def retrained_metrics(wildcards):
    """select_best's wait for the winner's retraining on train + val (none unless final.retrain_on_trainval)."""
    if not SETTINGS.dataset(wildcards.dataset).retrain_on_trainval:
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
