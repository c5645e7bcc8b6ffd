rule synthesize:
    output:
        folder=directory("results/raw/{dataset}/synthetic"),
    log:
        "logs/synthesize/{dataset}.log",
    benchmark:
        "benchmarks/synthesize/{dataset}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=job_params(SynthesizeJob),
    script:
        "../workflow/scripts/synthesize.py"


rule download:
    output:
        "results/raw/{dataset}/download/{file}",
    log:
        "logs/download/{dataset}/{file}.log",
    benchmark:
        "benchmarks/download/{dataset}/{file}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=240,
    params:
        url=download_param("url"),
        sha256=download_param("sha256"),
    script:
        "../workflow/scripts/download.py"


rule prepare:
    input:
        unpack(prepare_inputs),
    output:
        meta=DATA_META,
        arrays=expand(
            "results/data/{{dataset}}/{split}/{part}.npy",
            split=SPLITS,
            part=PARTS,
        ),
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "benchmarks/prepare/{dataset}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        settings=job_params(PrepareJob),
    script:
        "../workflow/scripts/prepare.py"
