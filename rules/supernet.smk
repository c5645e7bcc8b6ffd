rule warmup:
    input:
        meta=DATA_META,
    output:
        supernet=SUPERNET,
        metrics=WARMUP_METRICS,
        train_log="results/supernet/{dataset}/{space}/w{level}/train_log.csv",
    log:
        "logs/warmup/{dataset}/{space}/w{level}.log",
    benchmark:
        WARMUP_BENCHMARK
    priority: 1
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=warmup_mem_mb,
        runtime=720,
    params:
        level=lambda wildcards: LEVELS[wildcards.level],
        settings=job_params(WarmupJob),
    script:
        "../workflow/scripts/warmup.py"
