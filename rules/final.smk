rule train_final:
    input:
        arch="results/search/{dataset}/{space}/w{level}/{proxy}{repeat}/top/{rank}.json",
        meta=DATA_META,
    output:
        metrics="results/final/{dataset}/{space}/w{level}/{proxy}{repeat}/{rank}/metrics.json",
        train_log="results/final/{dataset}/{space}/w{level}/{proxy}{repeat}/{rank}/train_log.csv",
        model="results/final/{dataset}/{space}/w{level}/{proxy}{repeat}/{rank}/model.pt",
    log:
        "logs/train_final/{dataset}/{space}/w{level}/{proxy}{repeat}/{rank}.log",
    benchmark:
        "benchmarks/train_final/{dataset}/{space}/w{level}/{proxy}{repeat}/{rank}.tsv"
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
        "../workflow/scripts/train_final.py"


# The winner (select_best's choice, made again here from the same files) trained on train + val for the
# epochs its train-only run took; only with final.retrain_on_trainval, when select_best waits for it.
rule retrain_best:
    input:
        metrics=expand(
            "results/final/{{dataset}}/{{space}}/w{{level}}/{{proxy}}{{repeat}}/{rank}/metrics.json",
            rank=RANKS,
        ),
        archs=expand(
            "results/search/{{dataset}}/{{space}}/w{{level}}/{{proxy}}{{repeat}}/top/{rank}.json",
            rank=RANKS,
        ),
        meta=DATA_META,
    output:
        metrics=TRAINVAL_METRICS,
        train_log="results/final/{dataset}/{space}/w{level}/{proxy}{repeat}/trainval/train_log.csv",
        model="results/final/{dataset}/{space}/w{level}/{proxy}{repeat}/trainval/model.pt",
        arch="results/final/{dataset}/{space}/w{level}/{proxy}{repeat}/trainval/arch.json",
    log:
        "logs/retrain_best/{dataset}/{space}/w{level}/{proxy}{repeat}.log",
    benchmark:
        "benchmarks/retrain_best/{dataset}/{space}/w{level}/{proxy}{repeat}.tsv"
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
        "../workflow/scripts/retrain_best.py"


rule select_best:
    input:
        metrics=expand(
            "results/final/{{dataset}}/{{space}}/w{{level}}/{{proxy}}{{repeat}}/{rank}/metrics.json",
            rank=RANKS,
        ),
        models=expand(
            "results/final/{{dataset}}/{{space}}/w{{level}}/{{proxy}}{{repeat}}/{rank}/model.pt",
            rank=RANKS,
        ),
        archs=expand(
            "results/search/{{dataset}}/{{space}}/w{{level}}/{{proxy}}{{repeat}}/top/{rank}.json",
            rank=RANKS,
        ),
        retrained=retrained_metrics,
    output:
        best=BEST,
    log:
        "logs/select_best/{dataset}/{space}/w{level}/{proxy}{repeat}.log",
    benchmark:
        "benchmarks/select_best/{dataset}/{space}/w{level}/{proxy}{repeat}.tsv"
    priority: 1
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../workflow/scripts/select_best.py"
