rule export_model:
    input:
        best="results/final/{dataset}/{space}/w{level}/{proxy}/best.json",
        meta=DATA_META,
    output:
        program="results/final/{dataset}/{space}/w{level}/{proxy}/model.pt2",
    log:
        "logs/export_model/{dataset}/{space}/w{level}/{proxy}.log",
    benchmark:
        "benchmarks/export_model/{dataset}/{space}/w{level}/{proxy}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=final_mem_mb,
        runtime=30,
    script:
        "../workflow/scripts/export_model.py"


rule predict:
    input:
        best="results/final/{dataset}/{space}/w{level}/{proxy}/best.json",
        meta=DATA_META,
        test=expand(
            "results/data/{{dataset}}/test/{part}.npy",
            part=PARTS,
        ),
    output:
        predictions="results/final/{dataset}/{space}/w{level}/{proxy}/predictions_test.csv",
    log:
        "logs/predict/{dataset}/{space}/w{level}/{proxy}.log",
    benchmark:
        "benchmarks/predict/{dataset}/{space}/w{level}/{proxy}.tsv"
    conda:
        "../envs/cpu.yaml"
    threads: 1
    resources:
        mem_mb=final_mem_mb,
        runtime=60,
    params:
        batch_size=eval_batch_size,
    script:
        "../workflow/scripts/predict.py"
