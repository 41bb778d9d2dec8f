rule train:
    """Train one architecture on one dataset (one job per dataset x architecture, and per extra
    seed of its `seeds` entry)."""
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
            + data_options(dataset(wc), seed_of(wc))
        ),
    shell:
        run_logged(
            "train",
            "{CLI} train --index {input.index} --arch {params.arch} --out {params.run_dir} "
            "{params.options} --threads {threads}",
        )


# `tune` and `tune_valence_arousal`: one rule shape, one rule per entry of TUNES (common.smk)
for _tune_rule, (_section, _suffix, _log, _task) in TUNES.items():

    rule:
        """Two-phase fine-tuning of a trained model: head first, then everything at a low rate
        (`tune`: the `tune` section's archs; `tune_valence_arousal`: the `regression` section's
        `from_arch`, tuned into a Dense(2) valence/arousal regressor as Hewitt & Gunes did).
        """
        name:
            _tune_rule
        input:
            index=f"{RESULTS}/{{dataset}}/data/index.csv",
            model=f"{RESULTS}/{{dataset}}/{{arch}}/model.keras",
        output:
            model=f"{RESULTS}/{{dataset}}/{{arch}}-{_suffix}/model.keras",
            config=f"{RESULTS}/{{dataset}}/{{arch}}-{_suffix}/config.json",
        log:
            f"{RESULTS}/{{dataset}}/logs/{_log}-{{arch}}.log",
        threads: config.get("threads_per_job", 2)
        resources:
            **job_resources(_tune_rule),
        params:
            run_dir=lambda wc, output: Path(output.model).parent,
            options=tune_options(_section, _task),
        shell:
            run_logged(
                _tune_rule,
                "{CLI} tune {input.model} --index {input.index} --out {params.run_dir} "
                "{params.options} --threads {threads}",
            )
