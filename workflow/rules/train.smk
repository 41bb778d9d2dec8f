rule train:
    """Train one architecture on one dataset (one job per dataset x architecture)."""
    input:
        index=f"{RESULTS}/{{dataset}}/data/index.csv",
    output:
        model=f"{RESULTS}/{{dataset}}/{{arch}}/model.keras",
        config=f"{RESULTS}/{{dataset}}/{{arch}}/config.json",
        history=f"{RESULTS}/{{dataset}}/{{arch}}/history.csv",
    log:
        f"{RESULTS}/{{dataset}}/logs/train-{{arch}}.log",
    threads: config.get("threads_per_job", 2)
    resources:
        **job_resources("train"),
    params:
        arch=arch_of,
        run_dir=lambda wc, output: Path(output.model).parent,
        options=lambda wc: (
            flags(dataset(wc), TRAIN_FLAGS)
            + recipe_options(dataset(wc), arch_of(wc))
            + arch_options(dataset(wc), arch_of(wc))
            + data_options(dataset(wc))
        ),
    shell:
        run_logged("train", "{CLI} train --index {input.index} --arch {params.arch} --out {params.run_dir} "
            "{params.options} --threads {threads}")


rule tune:
    """Two-phase fine-tuning of a trained model: head first, then everything at a low rate."""
    input:
        index=f"{RESULTS}/{{dataset}}/data/index.csv",
        model=f"{RESULTS}/{{dataset}}/{{arch}}/model.keras",
    output:
        model=f"{RESULTS}/{{dataset}}/{{arch}}-tuned/model.keras",
        config=f"{RESULTS}/{{dataset}}/{{arch}}-tuned/config.json",
    log:
        f"{RESULTS}/{{dataset}}/logs/tune-{{arch}}.log",
    threads: config.get("threads_per_job", 2)
    resources:
        **job_resources("tune"),
    params:
        run_dir=lambda wc, output: Path(output.model).parent,
        options=lambda wc: (
            flags(dataset(wc)["tune"], TUNE_FLAGS)
            + tune_recipe_options(dataset(wc), dataset(wc)["tune"])
            + data_options(dataset(wc))
        ),
    shell:
        run_logged("tune", "{CLI} tune {input.model} --index {input.index} --out {params.run_dir} "
            "{params.options} --threads {threads}")


rule tune_valence_arousal:
    """A trained classifier tuned into a Dense(2) valence/arousal regressor (Hewitt & Gunes)."""
    input:
        index=f"{RESULTS}/{{dataset}}/data/index.csv",
        model=f"{RESULTS}/{{dataset}}/{{arch}}/model.keras",
    output:
        model=f"{RESULTS}/{{dataset}}/{{arch}}-va/model.keras",
        config=f"{RESULTS}/{{dataset}}/{{arch}}-va/config.json",
    log:
        f"{RESULTS}/{{dataset}}/logs/tune-va-{{arch}}.log",
    threads: config.get("threads_per_job", 2)
    resources:
        **job_resources("tune_valence_arousal"),
    params:
        run_dir=lambda wc, output: Path(output.model).parent,
        options=lambda wc: (
            "--task regression --class-weight none "
            + flags(dataset(wc)["regression"], TUNE_FLAGS)
            + tune_recipe_options(dataset(wc), dataset(wc)["regression"], "regression")
            + data_options(dataset(wc))
        ),
    shell:
        run_logged("tune_valence_arousal", "{CLI} tune {input.model} --index {input.index} --out {params.run_dir} "
            "{params.options} --threads {threads}")
