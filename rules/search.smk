rule search:
    input:
        supernet=SUPERNET,
        meta=DATA_META,
    output:
        records="results/search/{dataset}/{space}/w{level}/{proxy}{repeat}/records.csv",
    log:
        "logs/search/{dataset}/{space}/w{level}/{proxy}{repeat}.log",
    benchmark:
        SEARCH_BENCHMARK
    priority: 1
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=search_mem_mb,
        runtime=1440,
    params:
        settings=job_params(SearchJob),
    script:
        "../workflow/scripts/search.py"


rule export:
    input:
        records="results/search/{dataset}/{space}/w{level}/{proxy}{repeat}/records.csv",
    output:
        top=expand(
            "results/search/{{dataset}}/{{space}}/w{{level}}/{{proxy}}{{repeat}}/top/{rank}.json",
            rank=RANKS,
        ),
    log:
        "logs/export/{dataset}/{space}/w{level}/{proxy}{repeat}.log",
    benchmark:
        "benchmarks/export/{dataset}/{space}/w{level}/{proxy}{repeat}.tsv"
    priority: 1
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        top_k=config["search"]["top_k"],
        export_from=config["search"]["export_from"],
        history_top_k=config["search"]["history_top_k"],
    script:
        "../workflow/scripts/export.py"
