rule train_baseline:
    input:
        unpack(baseline_inputs),
    output:
        metrics=BASELINE_METRICS,
        model="results/baselines/{dataset}/{baseline}/model.pt",
        train_log="results/baselines/{dataset}/{baseline}/train_log.csv",
    log:
        "logs/train_baseline/{dataset}/{baseline}.log",
    benchmark:
        BASELINE_BENCHMARK
    priority: 1
    conda:
        GPU_ENV
    threads: 1
    resources:
        gpu=1,
        mem_mb=final_mem_mb,
        runtime=1440,
    params:
        settings=job_params(TrainJob),
    script:
        "../workflow/scripts/train_baseline.py"
