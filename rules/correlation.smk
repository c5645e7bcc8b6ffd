CORRELATION = SETTINGS.correlation


# One job per subnet: at the paper's scale each is a full training (hours on a GPU), so the
# scheduler spreads them over GPUs, a failed one reruns alone, and a larger num_subnets only adds jobs.
rule train_subnet:
    input:
        meta=DATA_META,
    output:
        metrics="results/correlation/{dataset}/{space}/subnets/{subnet}/metrics.json",
        arch="results/correlation/{dataset}/{space}/subnets/{subnet}/arch.json",
        model="results/correlation/{dataset}/{space}/subnets/{subnet}/model.pt",
        train_log="results/correlation/{dataset}/{space}/subnets/{subnet}/train_log.csv",
    log:
        "logs/correlation/{dataset}/{space}/train_subnet/{subnet}.log",
    benchmark:
        "benchmarks/correlation/{dataset}/{space}/train_subnet/{subnet}.tsv"
    wildcard_constraints:
        subnet=r"\d+",
    conda:
        GPU_ENV
    threads: 1
    resources:
        gpu=1,
        mem_mb=final_mem_mb,
        runtime=1440,
    params:
        settings=job_params(SubnetJob),
    script:
        "../workflow/scripts/train_subnet.py"


# The ground truth's extra seeds: the same job under seed{seed}/, so seed 0 keeps its path and adding
# repeats (or more repeated subnets) only adds jobs.
use rule train_subnet as train_subnet_seed with:
    output:
        metrics="results/correlation/{dataset}/{space}/subnets/{subnet}/seed{seed}/metrics.json",
        arch="results/correlation/{dataset}/{space}/subnets/{subnet}/seed{seed}/arch.json",
        model="results/correlation/{dataset}/{space}/subnets/{subnet}/seed{seed}/model.pt",
        train_log="results/correlation/{dataset}/{space}/subnets/{subnet}/seed{seed}/train_log.csv",
    log:
        "logs/correlation/{dataset}/{space}/train_subnet/{subnet}_seed{seed}.log",
    benchmark:
        "benchmarks/correlation/{dataset}/{space}/train_subnet/{subnet}_seed{seed}.tsv"
    wildcard_constraints:
        subnet=r"\d+",
        seed=r"[1-9]\d*",


# One job per warm-up level: the supernet is loaded once and scores every subnet with every proxy.
rule score_subnets:
    input:
        supernet=SUPERNET,
        meta=DATA_META,
    output:
        scores="results/correlation/{dataset}/{space}/w{level}/scores.csv",
    log:
        "logs/correlation/{dataset}/{space}/score_subnets/w{level}.log",
    benchmark:
        "benchmarks/correlation/{dataset}/{space}/score_subnets/w{level}.tsv"
    conda:
        GPU_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=warmup_mem_mb,
        runtime=240,
    params:
        settings=job_params(ScoreJob),
        proxies=list(CORRELATION.proxies),
    script:
        "../workflow/scripts/score_subnets.py"


rule correlation_table:
    input:
        truth=expand(
            "results/correlation/{{dataset}}/{{space}}/{run}",
            run=CORRELATION.truth_files(),
        ),
        scores=expand(
            "results/correlation/{{dataset}}/{{space}}/w{level}/scores.csv",
            level=LEVELS,
        ),
        warmup=expand(WARMUP_METRICS, level=LEVELS, allow_missing=True),
    output:
        data="results/correlation/{dataset}/{space}/data.csv",
        runs="results/correlation/{dataset}/{space}/truth_runs.csv",
        table=report(
            "results/tables/correlation_{dataset}_{space}.csv",
            caption="../workflow/report/correlation_table.rst",
            category="Correlation study",
            subcategory="{dataset} / {space}",
        ),
        table_md="results/tables/correlation_{dataset}_{space}.md",
        table_tex="results/tables/correlation_{dataset}_{space}.tex",
        summary=report(
            "results/tables/correlation_{dataset}_{space}_summary.html",
            caption="../workflow/report/correlation_summary.rst",
            category="Correlation study",
            subcategory="{dataset} / {space}",
        ),
        summary_md="results/tables/correlation_{dataset}_{space}_summary.md",
        plot=report(
            "results/plots/correlation_vs_warmup_{dataset}_{space}.png",
            caption="../workflow/report/correlation_vs_warmup.rst",
            category="Correlation study",
            subcategory="{dataset} / {space}",
        ),
        plot_pdf="results/plots/correlation_vs_warmup_{dataset}_{space}.pdf",
    log:
        "logs/correlation/{dataset}/{space}/table.log",
    benchmark:
        "benchmarks/correlation/{dataset}/{space}/table.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        levels=list(LEVELS.values()),
        proxies=list(CORRELATION.proxies),
        runs=CORRELATION.runs(),
        bootstrap=CORRELATION.bootstrap,
        seed=CORRELATION.seed,
        min_reliability=CORRELATION.min_reliability,
    script:
        "../workflow/scripts/correlation_table.py"
