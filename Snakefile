import re

from snakemake.utils import min_version

min_version("9.0")


# A --configfile replaces the embedded demo's config instead of being merged over it, so a run of
# config/paper.yaml holds exactly the paper's data sets and settings (the schema fills in the rest).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    dataset="|".join(DATASETS),
    space="|".join(SPACES),
    level="|".join(re.escape(name) for name in LEVELS),
    proxy="|".join(PROXIES),
    rank=r"\d+",
    repeat=r"(/r[1-9]\d*)?",
    baseline="|".join(BASELINES),


include: "rules/data.smk"
include: "rules/theory.smk"
include: "rules/supernet.smk"
include: "rules/search.smk"
include: "rules/final.smk"
include: "rules/predict.smk"
include: "rules/baselines.smk"
include: "rules/correlation.smk"
include: "rules/report.smk"


# Seconds-long bookkeeping and downloads (compute nodes often have no internet) run where Snakemake
# runs instead of waiting in a cluster queue.
localrules:
    all,
    download,
    export,
    select_best,
    correlation_table,
    search_results,
    search_plot,
    theory_aggregate,


rule all:
    default_target: True
    input:
        all_targets(),
