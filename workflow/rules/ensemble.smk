# Runs made of other runs: a dataset's `ensembles` (name -> member runs) and `distill` students
# (name -> {teacher, arch, ...}); both are classification runs, evaluated, reported and compared
# beside their members and teachers (common.smk: classification_runs).


# an ensemble's or a student's folder would also match `train`'s output pattern
ruleorder: ensemble > train
ruleorder: distill > train


rule ensemble:
    """One model averaging the probabilities of a dataset's runs (`ensembles: {name: [runs]}`)."""
    input:
        models=lambda wc: [
            f"{RESULTS}/{wc.dataset}/{m}/model.keras"
            for m in dataset(wc)["ensembles"][wc.ensemble]
        ],
    output:
        model=f"{RESULTS}/{{dataset}}/{{ensemble}}/model.keras",
        config=f"{RESULTS}/{{dataset}}/{{ensemble}}/config.json",
    log:
        f"{RESULTS}/{{dataset}}/logs/ensemble-{{ensemble}}.log",
    wildcard_constraints:
        ensemble=_names_pattern("ensembles"),
    threads: 1
    resources:
        **job_resources("ensemble"),
    params:
        runs=lambda wc, input: " ".join(
            shlex.quote(str(Path(m).parent)) for m in input.models
        ),
        run_dir=lambda wc, output: Path(output.model).parent,
        gpus=GPUS,
    shell:
        hide_gpus("ensemble")
        + "{CLI} ensemble {params.runs} --out {params.run_dir} --threads {threads} "
        "--gpus {params.gpus} > {log} 2>&1"


rule distill:
    """A student trained on a teacher run's soft targets plus the labels (`distill: {name: {teacher,
    arch, temperature, alpha, recipe keys}}`), with the dataset's recipe and the arch's options.
    """
    input:
        index=f"{RESULTS}/{{dataset}}/data/index.csv",
        teacher=lambda wc: f"{RESULTS}/{wc.dataset}/{student(wc)['teacher']}/model.keras",
    output:
        model=f"{RESULTS}/{{dataset}}/{{student}}/model.keras",
        config=f"{RESULTS}/{{dataset}}/{{student}}/config.json",
        history=f"{RESULTS}/{{dataset}}/{{student}}/history.csv",
    log:
        f"{RESULTS}/{{dataset}}/logs/distill-{{student}}.log",
    wildcard_constraints:
        student=_names_pattern("distill"),
    threads: config.get("threads_per_job", 2)
    resources:
        **job_resources("distill"),
    params:
        teacher_dir=lambda wc, input: Path(input.teacher).parent,
        run_dir=lambda wc, output: Path(output.model).parent,
        arch=lambda wc: student(wc)["arch"],
        options=lambda wc: (
            flags(dataset(wc), TRAIN_FLAGS)
            + recipe_options(dataset(wc), student(wc)["arch"], student(wc))
            + flags(student(wc), DISTILL_FLAGS)
            + arch_options(dataset(wc), student(wc)["arch"])
            + data_options(dataset(wc))
        ),
    shell:
        hide_gpus("distill")
        + "{CLI} distill {params.teacher_dir} --index {input.index} --arch {params.arch} "
        "--out {params.run_dir} {params.options} --threads {threads} > {log} 2>&1"
