# Every search repeat (dataset, space, level, proxy, repeat index), every baseline, and the files each
# row of search_results reads. The benchmark files are read, not required: the jobs that write them
# are upstream of best.json (or of the baseline's metrics), and a deleted benchmark must not make
# Snakemake redo a warm-up (its cost is then left empty).
SEARCH_RUNS = [
    (dataset, space, level, proxy, repeat)
    for dataset in DATASETS
    for space in SPACES
    for level, proxy in SEARCHES
    for repeat in range(len(REPEATS))
]
SEARCH_RUN_FILES = {"best": BEST, "warmup_metrics": WARMUP_METRICS, "meta": DATA_META}
SEARCH_RUN_BENCHMARKS = {
    "warmup_benchmark": WARMUP_BENCHMARK,
    "search_benchmark": SEARCH_BENCHMARK,
}
BASELINE_RUNS = [(dataset, name) for dataset in DATASETS for name in BASELINES]


rule search_results:
    input:
        **{
            name: run_paths(pattern, SEARCH_RUNS)
            for name, pattern in SEARCH_RUN_FILES.items()
        },
        baseline_metrics=[
            BASELINE_METRICS.format(dataset=d, baseline=name)
            for d, name in BASELINE_RUNS
        ],
        baseline_meta=[DATA_META.format(dataset=d) for d, _ in BASELINE_RUNS],
    output:
        table=report(
            SEARCH_RESULTS,
            caption="../workflow/report/search_results.rst",
            category="Search results",
        ),
        table_md="results/tables/search_results.md",
        table_tex="results/tables/search_results.tex",
        summary=report(
            "results/tables/search_summary.md",
            caption="../workflow/report/search_summary.rst",
            category="Search results",
        ),
    log:
        "logs/report/search_results.log",
    benchmark:
        "benchmarks/report/search_results.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        runs=SEARCH_RUNS,
        benchmarks={
            name: run_paths(pattern, SEARCH_RUNS)
            for name, pattern in SEARCH_RUN_BENCHMARKS.items()
        },
        baselines=BASELINE_RUNS,
        baseline_benchmarks=[
            BASELINE_BENCHMARK.format(dataset=d, baseline=name)
            for d, name in BASELINE_RUNS
        ],
        levels=LEVELS,
        margin=config["search"]["claim_margin"],
    script:
        "../workflow/scripts/search_results.py"


rule search_plot:
    input:
        SEARCH_RESULTS,
    output:
        png=report(
            "results/plots/{dataset}_logloss_vs_cost.png",
            caption="../workflow/report/logloss_vs_cost.rst",
            category="Search results",
        ),
        pdf=report(
            "results/plots/{dataset}_logloss_vs_cost.pdf",
            caption="../workflow/report/logloss_vs_cost.rst",
            category="Search results",
        ),
    log:
        "logs/report/{dataset}_logloss_vs_cost.log",
    benchmark:
        "benchmarks/report/{dataset}_logloss_vs_cost.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        format=lambda wildcards: DATASETS[wildcards.dataset].format,
        synthetic=lambda wildcards: DATASETS[wildcards.dataset].is_synthetic,
    script:
        "../workflow/scripts/search_plot.py"
