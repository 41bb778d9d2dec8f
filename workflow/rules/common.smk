import re
import shlex
import sys
from pathlib import Path

from jsonschema import ValidationError
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


def _config_error(message):
    """Stop before any job with one line on stderr (not Snakemake's traceback): exit status 1."""
    sys.exit(f"Error: config {message}")


def _validate_config(config):
    """Validate (and fill the defaults of) `config` against the schema; a violation is one
    line naming the key (`config datasets.mine.epochs: 0 is less than the minimum of 1`),
    not jsonschema's dump of the whole schema."""
    try:
        validate(config, schema="../schemas/config.schema.yaml")
    except WorkflowError as exc:
        # snakemake raises WorkflowError while handling jsonschema's error
        problem = exc.__context__
        if not isinstance(problem, ValidationError):
            raise
        where = ".".join(map(str, problem.absolute_path)) or "(top level)"
        _config_error(
            f"{where}: {problem.message}; see workflow/schemas/config.schema.yaml"
        )


_validate_config(config)

for _name, _ds in config["datasets"].items():
    for _arch, _seeds in _ds.get("seeds", {}).items():
        if _arch not in _ds["archs"]:
            _config_error(
                f"datasets.{_name}.seeds: {_arch!r} is not in its archs {_ds['archs']}"
            )
        if _ds.get("seed") in _seeds:
            _config_error(
                f"datasets.{_name}.seeds.{_arch}: {_ds['seed']} is the dataset's own seed "
                f"(its run {_arch} already trains with it); give other seeds"
            )
    for _arch in _ds.get("tune", {}).get("archs", []):
        if _arch not in _ds["archs"]:
            _config_error(
                f"datasets.{_name}.tune.archs: {_arch!r} is not in its archs {_ds['archs']}"
            )
    if "regression" in _ds and _ds["regression"]["from_arch"] not in _ds["archs"]:
        _config_error(
            f"datasets.{_name}.regression.from_arch: {_ds['regression']['from_arch']!r} "
            f"is not in its archs {_ds['archs']}"
        )


def _check_models(datasets):
    """Every `archs` entry (and `distill` student) is a model and every `arch_options` key an option
    of its builder (checked at parse time, so a dry run reports them; the catalog needs no
    TensorFlow, the option values are checked by the job that builds the model)."""
    from kerascv_emotion.errors import ConfigError
    from kerascv_emotion.model_catalog import available_models, check_model_options

    names = available_models()
    for name, ds in datasets.items():
        keys = [("archs", arch) for arch in ds["archs"]]
        keys += [
            (f"distill.{made}.arch", s["arch"])
            for made, s in ds.get("distill", {}).items()
        ]
        for key, arch in keys:
            if arch not in names:
                _config_error(
                    f"datasets.{name}.{key}: {arch!r} is not a model; available: {', '.join(names)}"
                )
        for arch, options in ds.get("arch_options", {}).items():
            try:
                check_model_options(arch, options)
            except ConfigError as exc:
                _config_error(f"datasets.{name}.arch_options.{arch}: {exc}")


if workflow.is_main_process:  # a job (e.g. on SLURM) runs what the main process checked
    _check_models(config["datasets"])

RESULTS = config["results"]
# the CLI of the interpreter that runs Snakemake (no reliance on PATH)
CLI = f"{shlex.quote(sys.executable)} -m kerascv_emotion"
GPUS = int(config.get("gpus", 0))
# take a GPU when `gpus` > 0 unless `gpu: false`
GPU_RULES = ("train", "tune", "tune_valence_arousal", "distill")


def job_settings(rule):
    """A rule's entry of `resources` over `resources.default` (whose defaults are in the schema)."""
    return config["resources"]["default"] | config["resources"].get(rule, {})


def uses_gpu(rule):
    return GPUS > 0 and job_settings(rule).get("gpu", rule in GPU_RULES)


def job_resources(rule):
    """`resources:` of a rule: mem_mb, runtime (minutes), gpu=1 when it uses a GPU, and the SLURM
    partition and account where the config sets them."""
    job = job_settings(rule)
    resources = {"mem_mb": job["mem_mb"], "runtime": job["runtime"]}
    if uses_gpu(rule):
        resources["gpu"] = 1
    for key in ("partition", "account"):
        if key in job:
            resources[f"slurm_{key}"] = job[key]
    return resources


def hide_gpus(rule):
    """Shell prefix that hides the GPUs from a job that does not use one (when `gpus` > 0)."""
    return "CUDA_VISIBLE_DEVICES= " if GPUS and not uses_gpu(rule) else ""


RUN_LOG = "log.txt"  # in a train/tune run folder: the output of every attempt, appended


def run_logged(rule, command):
    """The shell of a train/tune rule: `command` (its CLI call) with its output appended to
    `{params.run_dir}/log.txt` and copied to the rule's `log:`. Snakemake empties a rule's log
    before every job, also one the run's lock then refuses (a second workflow, from another
    clone, into the same results folder), so the run folder's log keeps the first one's.
    """
    return (
        'mkdir -p {params.run_dir}; (echo "== $(date -Is) on $(hostname): '
        + rule
        + '"; '
        + hide_gpus(rule)
        + command
        + ") 2>&1 | tee -a {params.run_dir}/"
        + RUN_LOG
        + " > {log}"
    )


wildcard_constraints:
    dataset=r"[A-Za-z0-9_.]+",
    arch=r"[A-Za-z0-9_]+",
    run=r"[A-Za-z0-9_]+(-tuned|-va)?",
    split=r"train|val|test",
    variant=r"[a-z_]+(-[a-z0-9]+)?",


def run_name(arch):
    """`keras:MobileNetV2` -> `keras_MobileNetV2` (run folder names have no colons)."""
    return arch.replace(":", "_")


def dataset(wildcards):
    return config["datasets"][wildcards.dataset]


SEED_SUFFIX = "_seed"  # `seeds: {vgg: [1]}` trains the run vgg_seed1


def architecture_runs(ds):
    """`{run folder name: (arch, seed)}` of a dataset's `train` jobs: each `archs` entry at the
    dataset's seed (None: the CLI's default), then each `seeds` entry's extra seeds."""
    runs = {run_name(arch): (arch, ds.get("seed")) for arch in ds["archs"]}
    for arch, seeds in ds.get("seeds", {}).items():
        runs |= {f"{run_name(arch)}{SEED_SUFFIX}{seed}": (arch, seed) for seed in seeds}
    return runs


def arch_of(wildcards):
    """The architecture (as `--arch` takes it) behind a run folder name."""
    try:
        return architecture_runs(dataset(wildcards))[wildcards.arch][0]
    except KeyError:
        raise ValueError(
            f"dataset {wildcards.dataset} has no architecture named {wildcards.arch}"
        ) from None


def seed_of(wildcards):
    """The training seed of a run folder name (None: the CLI's default)."""
    return architecture_runs(dataset(wildcards))[wildcards.arch][1]


def trained_runs(name):
    """The runs `train` and `tune` make of a dataset's classifiers."""
    ds = config["datasets"][name]
    runs = list(architecture_runs(ds))
    if "tune" in ds:
        runs += [f"{run_name(a)}-tuned" for a in ds["tune"].get("archs", ds["archs"])]
    return runs


def classification_runs(name):
    """Every classifier of a dataset: trained and tuned runs, then its ensembles and students."""
    ds = config["datasets"][name]
    return (
        trained_runs(name) + list(ds.get("ensembles", {})) + list(ds.get("distill", {}))
    )


def regression_runs(name):
    ds = config["datasets"][name]
    return (
        [f"{run_name(ds['regression']['from_arch'])}-va"] if "regression" in ds else []
    )


def eval_split(name):
    return config["datasets"][name].get("eval_split", "test")


def exports(name, runs):
    """`export.json` of every run in `runs` and entry of the dataset's `export` list."""
    variants = config["datasets"][name].get("export", [])
    return [
        f"{RESULTS}/{name}/{run}/export/{variant}/export.json"
        for run in runs
        for variant in variants
    ]


def export_options(wildcards):
    """`--format FORMAT [--quantize QUANTIZE]` of an `export` entry `FORMAT[-QUANTIZE]`."""
    fmt, _, quantize = wildcards.variant.partition("-")
    return f"--format {fmt}" + (f" --quantize {quantize}" if quantize else "")


def all_targets():
    targets = []
    for name in config["datasets"]:
        targets.append(f"{RESULTS}/{name}/comparison/comparison.html")
        for run in classification_runs(name) + regression_runs(name):
            targets.append(f"{RESULTS}/{name}/{run}/report/report.html")
        # the comparison asks for the classifiers' exports
        targets += exports(name, regression_runs(name))
    return targets


def arch_options(ds, arch):
    """`--arch-option KEY=VALUE ...` from the dataset's `arch_options: {arch: {key: value}}`."""
    import json

    options = ds.get("arch_options", {}).get(arch, {})
    return "".join(
        f"--arch-option {shlex.quote(f'{k}={json.dumps(v)}')} "
        for k, v in options.items()
    )


# dataset keys -> CLI options (each key is named as its TrainSettings/TuneSettings field or
# names it in its comment); a key absent from the config passes no option, so the CLI's
# default (the settings' own) applies: no default is repeated here
DATA_FLAGS = {
    "batch_size": "--batch-size",
    "augment": "--augment",
    "seed": "--seed",
    "on_bad_image": "--on-bad-image",
    "precise_bn_images": "--precise-bn-images",
    "deterministic": "--deterministic",
}
TRAIN_FLAGS = {
    "image_size": "--image-size",
    "channels": "--channels",
    "patience": "--patience",
    "reduce_lr_patience": "--reduce-lr-patience",
    "prior_correction": "--prior-correction",
}
RECIPE_FLAGS = {
    "epochs": "--epochs",
    "learning_rate": "--lr",
    "optimizer": "--optimizer",
    "lr_schedule": "--lr-schedule",
    "warmup_epochs": "--warmup-epochs",
    "weight_decay": "--weight-decay",
    "label_smoothing": "--label-smoothing",
    "ema_momentum": "--ema-momentum",
    "mixup_alpha": "--mixup-alpha",
    "cutmix_alpha": "--cutmix-alpha",
}
DISTILL_FLAGS = {
    "temperature": "--temperature",
    "alpha": "--alpha",
    "soft_targets": "--soft-targets",
}
TUNE_FLAGS = {
    "head_epochs": "--head-epochs",
    "finetune_epochs": "--finetune-epochs",
    "head_lr": "--head-lr",  # head_learning_rate
    "finetune_lr": "--finetune-lr",  # finetune_learning_rate
    "unfreeze_blocks": "--unfreeze-blocks",
}
# a tune has its own epochs and rates (TUNE_FLAGS); the rest of the dataset's recipe applies to it
TUNE_RECIPE_KEYS = [
    key for key in RECIPE_FLAGS if key not in ("epochs", "learning_rate")
]


def flags(values, names):
    """`--flag value ...` for each key of `names` present in `values` (a true boolean: `--flag`)."""
    import json

    out = ""
    for key, flag in names.items():
        if key not in values:
            continue
        value = values[key]
        if isinstance(value, bool):
            out += f"{flag} " if value else ""
        else:
            out += f"{flag} {shlex.quote(json.dumps(value) if isinstance(value, dict) else str(value))} "
    return out


def recipe_options(ds, arch, over=None):
    """`--lr ... --label-smoothing ...`: the dataset's recipe, with `arch_recipe[arch]` and then
    the recipe keys of `over` (e.g. a `distill` entry) over it."""
    recipe = {key: ds[key] for key in RECIPE_FLAGS if key in ds}
    recipe |= ds.get("arch_recipe", {}).get(arch, {})
    recipe |= {key: value for key, value in (over or {}).items() if key in RECIPE_FLAGS}
    return flags(recipe, RECIPE_FLAGS)


def tune_recipe_options(ds, section, task="classification"):
    """`--optimizer ... --label-smoothing ...` of a tune: the dataset's recipe (not `arch_recipe`,
    which pairs an optimizer with that architecture's training rate) with the tune section's keys
    over it; label smoothing only for a classifier."""
    recipe = {
        key: value for key, value in (ds | section).items() if key in TUNE_RECIPE_KEYS
    }
    if task != "classification":
        recipe.pop("label_smoothing", None)
    return flags(recipe, RECIPE_FLAGS)


def data_options(ds, seed=None):
    """CLI options shared by train and tune, from a dataset's config (`seed`: another seed
    than the dataset's)."""
    values = ds if seed is None else ds | {"seed": seed}
    return flags(values, DATA_FLAGS) + f"--gpus {GPUS}"


# the data rule (data.smk)
# dataset keys -> `synth` / `index` options; an absent key passes no option (the CLI's default)
SYNTH_FLAGS = {
    "per_class": "--per-class",
    "size": "--size",
    "seed": "--seed",
    "viral_pneumonia": "--viral-pneumonia",
}
SOURCE_FLAGS = {
    "format": "--format",
    "val_fraction": "--val-fraction",
    "test_fraction": "--test-fraction",
    "seed": "--seed",
}


def _data_command(wildcards, output):
    ds = dataset(wildcards)
    out_dir = Path(output.index).parent
    if "synthetic" in ds:
        s = ds["synthetic"]
        return f"{CLI} synth {s['kind']} {shlex.quote(str(out_dir))} {flags(s, SYNTH_FLAGS)}".strip()
    src = ds["source"]
    root = src["root"].format(data_root=config.get("data_root", "."))
    parts = [
        f"{CLI} index {shlex.quote(root)} --out {shlex.quote(output.index)}",
        flags(src, SOURCE_FLAGS).strip(),
    ]
    if src.get("classes"):
        parts.append(f"--classes {shlex.quote(','.join(src['classes']))}")
    for old, new in src.get("class_map", {}).items():
        parts.append(f"--class-map {shlex.quote(f'{old}={new}')}")
    if src.get("dedupe"):
        parts.append("--dedupe")
    return " ".join(parts)


# the tune rules (train.smk)
# The two tunes of a trained classifier; train.smk makes one rule of each entry, named
# as its key, from (the dataset's config section with its settings, the run folder's
# suffix, the log's prefix, the task)
TUNES = {
    "tune": ("tune", "tuned", "tune", "classification"),
    "tune_valence_arousal": ("regression", "va", "tune-va", "regression"),
}


def tune_options(section, task):
    """`params.options` of a tune rule: the `section`'s phases and rates, the dataset's recipe
    with the section over it, the data options; a regressor's task and no class weights.
    """

    def options(wildcards):
        ds = dataset(wildcards)
        task_options = (
            "--task regression --class-weight none " if task == "regression" else ""
        )
        return (
            task_options
            + flags(ds[section], TUNE_FLAGS)
            + tune_recipe_options(ds, ds[section], task)
            + data_options(ds)
        )

    return options


# runs made of other runs (ensemble.smk)
def _check_made_runs(name, ds):
    """Ensemble members are trained or tuned runs of the dataset, a student's teacher one of those
    or an ensemble; no name is used twice (checked at parse time, so a dry run reports it).
    """
    trained = trained_runs(name)
    ensembles = list(ds.get("ensembles", {}))
    taken = set(trained)
    for made in ensembles + list(ds.get("distill", {})):
        if made in taken:
            _config_error(
                f"datasets.{name}: the run name {made!r} is used twice; rename the ensemble "
                "or student"
            )
        taken.add(made)
    for made, members in ds.get("ensembles", {}).items():
        for member in members:
            if member not in trained:
                _config_error(
                    f"datasets.{name}.ensembles.{made}: {member!r} is not one of the "
                    f"dataset's runs {trained}"
                )
    for made, entry in ds.get("distill", {}).items():
        if entry["teacher"] not in trained + ensembles:
            _config_error(
                f"datasets.{name}.distill.{made}.teacher: {entry['teacher']!r} is not one of "
                f"the dataset's runs or ensembles {trained + ensembles}"
            )


for _name, _ds in config["datasets"].items():
    _check_made_runs(_name, _ds)


def _names_pattern(key):
    """A wildcard pattern matching exactly the names of every dataset's `key` entries (none: nothing)."""
    names = sorted(
        {made for ds in config["datasets"].values() for made in ds.get(key, {})}
    )
    return "|".join(re.escape(made) for made in names) or "(?!)"


def student(wildcards):
    return dataset(wildcards)["distill"][wildcards.student]
