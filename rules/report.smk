# Every searched (dataset, space, level, proxy), and the files each row of search_results reads.
# The benchmark files are read, not required: the jobs that write them are upstream of best.json,
# and a deleted benchmark must not make Snakemake redo a warm-up (its cost is then left empty).
SEARCH_RUNS = [
    (dataset, space, level, proxy)
    for dataset in DATASETS
    for space in SPACES
    for level, proxy in SEARCHES
]
SEARCH_RUN_FILES = {
    "best": "results/final/{0}/{1}/w{2}/{3}/best.json",
    "warmup_metrics": "results/supernet/{0}/{1}/w{2}/metrics.json",
    "meta": "results/data/{0}/meta.json",
}
SEARCH_RUN_BENCHMARKS = {
    "warmup_benchmark": "benchmarks/warmup/{0}/{1}/w{2}.tsv",
    "search_benchmark": "benchmarks/search/{0}/{1}/w{2}/{3}.tsv",
}


rule search_results:
    input:
        **{
            name: [pattern.format(*run) for run in SEARCH_RUNS]
            for name, pattern in SEARCH_RUN_FILES.items()
        },
    output:
        table=report(
            "results/tables/search_results.csv",
            caption="../workflow/report/search_results.rst",
            category="Search results",
        ),
        table_md="results/tables/search_results.md",
        table_tex="results/tables/search_results.tex",
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
            name: [pattern.format(*run) for run in SEARCH_RUNS]
            for name, pattern in SEARCH_RUN_BENCHMARKS.items()
        },
        levels=LEVELS,
    script:
        "../workflow/scripts/search_results.py"


rule search_plot:
    input:
        "results/tables/search_results.csv",
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
