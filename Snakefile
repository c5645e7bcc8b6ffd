from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    dataset="|".join(DATASETS),


include: "rules/data.smk"
include: "rules/theory.smk"


rule all:
    default_target: True
    input:
        all_targets(),
