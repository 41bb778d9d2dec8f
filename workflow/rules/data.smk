rule dataset_index:
    """Generate the built-in data (synthetic) or index a real data set into one index."""
    output:
        index=f"{RESULTS}/{{dataset}}/data/index.csv",
        meta=f"{RESULTS}/{{dataset}}/data/index.meta.json",
    log:
        f"{RESULTS}/{{dataset}}/logs/index.log",
    resources:
        **job_resources("dataset_index"),
    params:
        command=_data_command,
    shell:
        "{params.command} > {log} 2>&1"
