rule evaluate:
    """Predict the held-out split; metrics JSON with per-class metrics and bootstrap intervals."""
    input:
        model=f"{RESULTS}/{{dataset}}/{{run}}/model.keras",
        index=f"{RESULTS}/{{dataset}}/data/index.csv",
    output:
        metrics=f"{RESULTS}/{{dataset}}/{{run}}/eval/{{split}}/metrics.json",
        predictions=f"{RESULTS}/{{dataset}}/{{run}}/eval/{{split}}/predictions.npz",
    log:
        f"{RESULTS}/{{dataset}}/logs/evaluate-{{run}}-{{split}}.log",
    threads: 1
    resources:
        **job_resources("evaluate"),
    params:
        run_dir=lambda wc, input: Path(input.model).parent,
        tta=lambda wc: dataset(wc).get("tta", "none"),
        bootstrap=config["bootstrap"],
        gpus=GPUS,
    shell:
        hide_gpus("evaluate")
        + "{CLI} evaluate {params.run_dir} --index {input.index} --split {wildcards.split} "
        "--bootstrap {params.bootstrap} --tta {params.tta} --threads {threads} --gpus {params.gpus} "
        "> {log} 2>&1"


rule report:
    """Figures and a self-contained report.html for one run."""
    input:
        metrics=lambda wc: f"{RESULTS}/{wc.dataset}/{wc.run}/eval/{eval_split(wc.dataset)}/metrics.json",
    output:
        html=report(
            f"{RESULTS}/{{dataset}}/{{run}}/report/report.html",
            category="{dataset}",
            subcategory="runs",
            labels={"dataset": "{dataset}", "run": "{run}", "page": "run report"},
        ),
    log:
        f"{RESULTS}/{{dataset}}/logs/report-{{run}}.log",
    resources:
        **job_resources("report"),
    params:
        run_dir=lambda wc: f"{RESULTS}/{wc.dataset}/{wc.run}",
        split=lambda wc: eval_split(wc.dataset),
    shell:
        "{CLI} report {params.run_dir} --split {params.split} > {log} 2>&1"


rule export:
    """Export one run as `<format>[-<quantize>]` (an entry of the dataset's `export` list), checked
    in its runtime, with its size and single-image latency in export.json."""
    input:
        model=f"{RESULTS}/{{dataset}}/{{run}}/model.keras",
    output:
        report=f"{RESULTS}/{{dataset}}/{{run}}/export/{{variant}}/export.json",
    log:
        f"{RESULTS}/{{dataset}}/logs/export-{{run}}-{{variant}}.log",
    threads: 1
    resources:
        **job_resources("export"),
    params:
        run_dir=lambda wc, input: Path(input.model).parent,
        out_dir=lambda wc, output: Path(output.report).parent,
        options=export_options,
        gpus=GPUS,
    shell:
        hide_gpus("export")
        + "{CLI} export {params.run_dir} {params.options} --out {params.out_dir} "
        "--threads {threads} --gpus {params.gpus} > {log} 2>&1"


rule compare:
    """Side-by-side comparison of a dataset's classification runs (with their exports' size and
    latency when the dataset has an `export` list)."""
    input:
        metrics=lambda wc: expand(
            f"{RESULTS}/{wc.dataset}/{{run}}/eval/{eval_split(wc.dataset)}/metrics.json",
            run=classification_runs(wc.dataset),
        ),
        exports=lambda wc: exports(wc.dataset, classification_runs(wc.dataset)),
    output:
        html=report(
            f"{RESULTS}/{{dataset}}/comparison/comparison.html",
            category="{dataset}",
            subcategory="comparison",
            labels={"dataset": "{dataset}", "run": "all", "page": "comparison"},
        ),
    log:
        f"{RESULTS}/{{dataset}}/logs/compare.log",
    resources:
        **job_resources("compare"),
    params:
        runs=lambda wc: " ".join(
            f"{RESULTS}/{wc.dataset}/{r}" for r in classification_runs(wc.dataset)
        ),
        out_dir=lambda wc, output: Path(output.html).parent,
        split=lambda wc: eval_split(wc.dataset),
    shell:
        "{CLI} compare {params.runs} --out {params.out_dir} --split {params.split} > {log} 2>&1"
