# kerascv_emotion workflow: data -> index -> train (per dataset x architecture) -> tune ->
# ensembles and distilled students -> evaluate -> report -> compare. Every rule is a thin shell
# around the `kerascv-emotion` CLI.
#   snakemake --cores 4                                   # built-in synthetic default
#   snakemake --cores 4 --configfile configs/covid.yaml --config data_root=../shared/data
#   snakemake --report report.html                        # Snakemake's own report

from snakemake.utils import min_version

min_version("9.0")


# config.yaml (the synthetic default) only when no --configfile is given: Snakemake would
# otherwise merge a real-data config over it and also run the default's datasets
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/ensemble.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    default_target: True
    input:
        all_targets(),
