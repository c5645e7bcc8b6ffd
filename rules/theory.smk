from dataclasses import replace

from sigeo.config import TheoryJob
from sigeo.study.mnist import mnist_files

THEORY = SETTINGS.theory


rule theory_data:
    input:
        # MNIST's four IDX files when theory.mnist_dir is set; MNIST-1D is generated from nothing
        unpack(
            lambda wildcards: mnist_files(THEORY.mnist_dir) if THEORY.mnist_dir else {}
        ),
    output:
        "results/theory/data.npz",
    log:
        "logs/theory/data.log",
    benchmark:
        "benchmarks/theory/data.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        mnist_dir=THEORY.mnist_dir,
        seed=THEORY.seed,
    script:
        "../workflow/scripts/theory_data.py"


rule theory_width:
    input:
        "results/theory/data.npz",
    output:
        "results/theory/runs/h{width}.csv",
    log:
        "logs/theory/h{width}.log",
    benchmark:
        "benchmarks/theory/h{width}.tsv"
    wildcard_constraints:
        width=r"\d+",
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        # only this job's width, so adding a width to the config leaves the others up to date
        settings=lambda wildcards: TheoryJob(
            replace(THEORY, widths=(int(wildcards.width),)), SETTINGS.theory_probe
        ),
    script:
        "../workflow/scripts/theory_width.py"


rule theory_aggregate:
    input:
        expand("results/theory/runs/h{width}.csv", width=THEORY.widths),
    output:
        runs="results/theory/runs.csv",
        table=report(
            "results/tables/theory_correlation.csv",
            caption="../workflow/report/theory_correlation.rst",
            category="Theory study",
        ),
        table_md="results/tables/theory_correlation.md",
        table_tex="results/tables/theory_correlation.tex",
        readme=report(
            "results/tables/theory_vs_readme.html",
            caption="../workflow/report/theory_vs_readme.rst",
            category="Theory study",
        ),
        readme_csv="results/tables/theory_vs_readme.csv",
        readme_md="results/tables/theory_vs_readme.md",
        scatter=report(
            "results/plots/theory_scatter.png",
            caption="../workflow/report/theory_scatter.rst",
            category="Theory study",
        ),
        scatter_pdf=report(
            "results/plots/theory_scatter.pdf",
            caption="../workflow/report/theory_scatter.rst",
            category="Theory study",
        ),
        warmup=report(
            "results/plots/theory_correlation_vs_warmup.png",
            caption="../workflow/report/theory_correlation_vs_warmup.rst",
            category="Theory study",
        ),
        warmup_pdf="results/plots/theory_correlation_vs_warmup.pdf",
    log:
        "logs/theory/aggregate.log",
    benchmark:
        "benchmarks/theory/aggregate.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        seed=config["seed"],
    script:
        "../workflow/scripts/theory_aggregate.py"
