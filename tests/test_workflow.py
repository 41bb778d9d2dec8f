"""The Snakemake workflow: dry runs of every config, and one real run of the default
config with tiny settings (data -> train -> tune -> evaluate -> report -> compare)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import tiny_default_config

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _snakemake(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SNAKEMAKE, "-s", str(REPO / "Snakefile"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def _job_counts(output: str) -> dict[str, int]:
    counts = {}
    for match in re.finditer(r"^(\w+)\s+(\d+)$", output, flags=re.MULTILINE):
        counts[match.group(1)] = int(match.group(2))
    return counts


def test_default_dry_run_lists_one_train_job_per_dataset_and_arch(tmp_path: Path) -> None:
    result = _snakemake("-n", "-p", "--cores", "4", "--configfile", str(REPO / "config.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    # each architecture's builder options reach its train command
    for ds in config["datasets"].values():
        for arch, options in ds.get("arch_options", {}).items():
            for key, value in options.items():
                assert re.search(rf"--arch {arch} .*--arch-option {key}={value}\b", result.stdout), (arch, key)
        # the per-architecture recipe replaces the dataset's for that architecture only
        for arch, recipe in ds.get("arch_recipe", {}).items():
            for key, value in recipe.items():
                flag = "--lr" if key == "learning_rate" else "--" + key.replace("_", "-")
                assert re.search(rf"--arch {arch} .*{flag} {value}\b", result.stdout), (arch, key)
    expected_train = sum(len(ds["archs"]) for ds in config["datasets"].values())
    counts = _job_counts(result.stdout)
    assert counts["train"] == expected_train
    assert counts["compare"] == len(config["datasets"])
    assert counts["tune_valence_arousal"] == 1
    faces = config["datasets"]["faces"]
    assert counts["tune"] == len(faces["tune"].get("archs", faces["archs"]))
    assert "export" not in counts and " export " not in result.stdout  # no `export` list: nothing exported
    for ds in config["datasets"]:
        for arch in config["datasets"][ds]["archs"]:
            assert f"{ds}/{arch}/model.keras" in result.stdout


# runs Snakemake's CLI in this interpreter, then writes the modules it imported to argv[1]
# (sys.modules, not `python -X importtime`: TensorFlow's import runs with stderr muted)
_MODULES_AFTER_SNAKEMAKE = """
import json, sys
out, sys.argv = sys.argv[1], ["snakemake", *sys.argv[2:]]
try:
    from snakemake.cli import main
    main()
finally:
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
"""


def test_default_dry_run_imports_no_tensorflow(tmp_path: Path) -> None:
    """Parsing the workflow checks archs and their options against model_catalog, not Keras's
    registry: a dry run stays fast (TensorFlow's import alone takes seconds)."""
    modules = tmp_path / "modules.json"
    result = subprocess.run([sys.executable, "-c", _MODULES_AFTER_SNAKEMAKE, str(modules), "-s",
                             str(REPO / "Snakefile"), "-n", "--cores", "4", "--configfile",
                             str(REPO / "config.yaml")], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = json.loads(modules.read_text())
    assert "kerascv_emotion.model_catalog" in imported  # the Snakefile was parsed in this process
    heavy = [name for name in imported if name.split(".")[0] in ("tensorflow", "keras")]
    assert not heavy, heavy[:10]


def test_export_list_plans_one_export_per_run_and_format(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"]["faces"]["export"] = ["litert", "litert-int8"]
    with_export = tmp_path / "export.yaml"
    with_export.write_text(yaml.safe_dump(config))
    result = _snakemake("-n", "-p", "--cores", "4", "--configfile", str(with_export), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = ["alexnet", "vgg", "mobilenet", "vgg-tuned", "ensemble", "mobilenet_student", "vgg-va"]
    assert _job_counts(result.stdout)["export"] == 2 * len(runs)
    commands = re.findall(r"-m kerascv_emotion export (\S+) (.*?) --out (\S+) --threads 1 --gpus 0", result.stdout)
    assert sorted(commands) == sorted(
        (f"results/faces/{run}", options, f"results/faces/{run}/export/{variant}")
        for run in runs for variant, options in (("litert", "--format litert"),
                                                 ("litert-int8", "--format litert --quantize int8")))
    assert "results/xrays" not in "".join(c[0] for c in commands)  # a dataset without `export`


def test_tune_rules_take_the_datasets_recipe_with_their_sections_over_it(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    faces = config["datasets"]["faces"]
    faces |= {"optimizer": "adamw", "weight_decay": 0.001, "label_smoothing": 0.1, "learning_rate": 0.01}
    faces["tune"]["optimizer"] = "sgd"
    faces["regression"]["lr_schedule"] = "cosine"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(config))
    result = _snakemake("-n", "-p", "--cores", "4", "--configfile", str(recipe), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    tune = re.findall(r"kerascv_emotion tune \S+/vgg/model.keras .*--out \S+/vgg-tuned (.*)", result.stdout)
    regression = re.findall(r"kerascv_emotion tune \S+/vgg/model.keras .*--out \S+/vgg-va (.*)", result.stdout)
    assert len(tune) == 1 and len(regression) == 1, result.stdout[-3000:]
    assert "--optimizer sgd" in tune[0] and "--weight-decay 0.001" in tune[0] and "--label-smoothing 0.1" in tune[0]
    assert "--optimizer adamw" in regression[0] and "--lr-schedule cosine" in regression[0]
    assert "--label-smoothing" not in regression[0]  # classification only
    for options in (tune[0], regression[0]):
        assert "--lr " not in options and "--epochs " not in options  # a tune's own rates and epochs


def test_schema_export_entries_are_the_cli_formats() -> None:
    from kerascv_emotion.export import FORMATS, QUANTIZE

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    entries = schema["properties"]["datasets"]["additionalProperties"]["properties"]["export"]["items"]["enum"]
    assert set(entries) == set(FORMATS) | {f"litert-{quantize}" for quantize in QUANTIZE}


def _planned_datasets(output: str) -> set[str]:
    return set(re.findall(r"results/([A-Za-z0-9_.]+)/", output))


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_each_config_dry_runs_only_its_own_datasets(name: str, tmp_path: Path) -> None:
    """Run where a clone's config.yaml lies beside it (as README's commands do): the default
    synthetic datasets must not be merged into a real-data config's plan."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    data_root = tmp_path / "data"
    data_root.mkdir()
    result = _snakemake("-n", "-p", "--cores", "4", "--configfile", str(REPO / "configs" / name),
                        "--config", f"data_root={data_root}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((REPO / "configs" / name).read_text())
    assert _planned_datasets(result.stdout) == set(config["datasets"])
    assert _job_counts(result.stdout)["train"] == sum(
        len(ds["archs"]) + sum(map(len, ds.get("seeds", {}).values())) for ds in config["datasets"].values())


def test_without_configfile_the_default_config_runs(tmp_path: Path) -> None:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = _snakemake("-n", "-p", "--cores", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert _planned_datasets(result.stdout) == set(config["datasets"])


def test_tuning_an_untrained_arch_is_a_clear_error(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"]["faces"]["tune"]["archs"] = ["covid"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = _snakemake("-n", "--cores", "1", "--configfile", str(bad), cwd=tmp_path)
    assert result.returncode != 0
    assert "datasets.faces.tune.archs: 'covid' is not in its archs" in result.stdout + result.stderr


def test_bad_config_is_rejected_by_the_schema(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"]["faces"]["epochs"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = _snakemake("-n", "--cores", "1", "--configfile", str(bad), cwd=tmp_path)
    assert result.returncode != 0
    assert "epochs" in result.stdout + result.stderr


@pytest.mark.slow
def test_default_workflow_runs_to_reports_with_tiny_settings(tmp_path: Path) -> None:
    config = tiny_default_config(bootstrap=50)  # one arch per dataset; dry runs cover the rest
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump(config))
    result = _snakemake("--cores", "2", "--configfile", str(small), cwd=tmp_path, timeout=1200)
    assert result.returncode == 0, result.stderr[-5000:]
    results = tmp_path / "results"
    for name, ds in config["datasets"].items():
        html = (results / name / "comparison" / "comparison.html").read_text()
        for run in ds["archs"] + list(ds.get("ensembles", {})) + list(ds.get("distill", {})):
            assert run in html
            assert (results / name / run / "report" / "report.html").is_file()
            assert (results / name / run / "eval" / "test" / "metrics.json").is_file()
    tuned = (results / "faces" / f"{config['datasets']['faces']['archs'][0]}-tuned" / "history.csv").read_text()
    assert "head" in tuned and "finetune" in tuned

    report = _snakemake("--configfile", str(small), "--report", str(tmp_path / "report.html"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    assert (tmp_path / "report.html").stat().st_size > 10_000


SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "covid-xray").is_dir(), reason="../shared/data/covid-xray is absent")
def test_covid_config_short_real_run(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO / "configs" / "covid.yaml").read_text())
    config["bootstrap"] = 50
    ds = config["datasets"]["covid"]
    ds.update(image_size=32, epochs=1, archs=["covid"])
    short = tmp_path / "covid-short.yaml"
    short.write_text(yaml.safe_dump(config))
    result = _snakemake("--cores", "2", "--configfile", str(short), "--config", f"data_root={SHARED_DATA}",
                        cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-5000:]
    import json

    metrics = json.loads((tmp_path / "results" / "covid" / "covid" / "eval" / "val" / "metrics.json").read_text())
    assert metrics["class_names"] == ["normal", "covid"]
    assert metrics["n"] == 46  # a stratified quarter of Covid 111 + Normal 70 (28 + 18, rounded)
    assert "binary" in metrics and "bootstrap" in metrics
    assert (tmp_path / "results" / "covid" / "comparison" / "comparison.html").is_file()


# TrainSettings fields the workflow does not expose as dataset keys, and why
NOT_IN_WORKFLOW = {"task": "set by the rules (regression runs)", "class_weight": "set by the rules",
                   "monitor": "the task default", "max_pixels": "Pillow's limit", "workers": "loader threads",
                   "cache_dir": "beside the index", "tensorboard": "off", "mixed_precision": "off"}
# workflow tune/regression keys -> TuneSettings fields
TUNE_KEYS = {"head_epochs": "head_epochs", "finetune_epochs": "finetune_epochs",
             "head_lr": "head_learning_rate", "finetune_lr": "finetune_learning_rate",
             "unfreeze_blocks": "unfreeze_blocks"}


def _rule_flags() -> dict[str, dict[str, str]]:
    """The dataset-key -> CLI-option maps of workflow/rules/common.smk."""
    text = (REPO / "workflow" / "rules" / "common.smk").read_text()
    namespace: dict = {}
    exec(text[text.index("DATA_FLAGS = {"):text.index("def flags(")], namespace)  # noqa: S102
    return {k: v for k, v in namespace.items() if k.endswith("_FLAGS")}


def _cli_defaults(command: str, args: list[str]) -> dict[str, object]:
    """``{parameter: default}`` of a CLI command; each settings default shown in ``--help``
    (flags and None aside)."""
    from click.testing import CliRunner

    from kerascv_emotion.cli import main
    from kerascv_emotion.settings import TRAIN_DEFAULTS, TUNE_DEFAULTS

    command_object = main.commands[command]
    help_text = " ".join(CliRunner().invoke(main, [command, "--help"], terminal_width=400).output.split())
    for option in command_object.params:
        if option.name in {**TRAIN_DEFAULTS, **TUNE_DEFAULTS} and option.default not in (None, False):
            shown = f"[default: {option.default}" if isinstance(option.default, str) else f"default: {option.default}"
            assert option.opts[0] in help_text and shown in help_text, (command, option.name)
    return command_object.make_context(command, args).params


def test_every_setting_default_has_one_home() -> None:
    """Each default lives in the settings dataclasses: every field appears in the CLI (help
    included) with that default, and in the schema with it unless listed in NOT_IN_WORKFLOW;
    tune's phase defaults agree between TuneSettings, the CLI and the schema; the rules pass
    every schema setting through an option (so no default is repeated in a rule)."""
    from kerascv_emotion.settings import FROM_MODEL, TRAIN_DEFAULTS, TUNE_DEFAULTS

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    dataset = schema["properties"]["datasets"]["additionalProperties"]["properties"]
    train = _cli_defaults("train", ["--index", "i.csv", "--arch", "vgg", "--out", "run"])
    tune = _cli_defaults("tune", [str(REPO / "config.yaml"), "--index", "i.csv", "--out", "run"])
    flags = _rule_flags()
    passed = set(flags["DATA_FLAGS"]) | set(flags["TRAIN_FLAGS"]) | set(flags["RECIPE_FLAGS"])
    for name, default in TRAIN_DEFAULTS.items():
        assert name in train, f"train has no option for {name}"
        assert train[name] in (default, str(default), "none" if default is None else default), name
        assert name in tune or name in FROM_MODEL, f"tune has no option for {name}"
        if name in tune and name != "task":
            assert tune[name] == train[name], name
        if name in NOT_IN_WORKFLOW:
            assert name not in dataset, f"{name} is in the schema: remove it from NOT_IN_WORKFLOW"
            continue
        assert name in dataset, f"the workflow schema has no {name} (or list it in NOT_IN_WORKFLOW)"
        assert dataset[name].get("default") == default, name
        assert name in passed, f"no rule passes {name} to the CLI"
    for key, field in TUNE_KEYS.items():
        assert tune[field] == TUNE_DEFAULTS[field], field
        assert key in flags["TUNE_FLAGS"], key
        for block in ("tune", "regression"):
            if key in dataset[block]["properties"]:
                assert dataset[block]["properties"][key].get("default") == TUNE_DEFAULTS[field], (block, key)


def _faces_with_made_runs(tmp_path: Path, **faces: object) -> Path:
    """config.yaml with ``faces`` keys replaced (e.g. ``ensembles``, ``distill``), written to tmp_path."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"]["faces"].update(faces)
    path = tmp_path / "made.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_ensembles_and_students_are_planned_and_compared_beside_their_members(tmp_path: Path) -> None:
    made = _faces_with_made_runs(tmp_path, ensembles={"ens": ["alexnet", "vgg-tuned"]},
                                 distill={"small": {"teacher": "ens", "arch": "mobilenet", "temperature": 2,
                                                    "epochs": 3, "soft_targets": "offline"}})
    result = _snakemake("-n", "-p", "--cores", "4", "--configfile", str(made), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = _job_counts(result.stdout)
    assert counts["ensemble"] == 1 and counts["distill"] == 1
    assert re.search(r"-m kerascv_emotion ensemble results/faces/alexnet results/faces/vgg-tuned "
                     r"--out results/faces/ens --threads 1", result.stdout)
    student = re.findall(r"-m kerascv_emotion distill results/faces/ens --index \S+ --arch mobilenet "
                         r"--out results/faces/small (.*)", result.stdout)
    assert len(student) == 1, result.stdout[-3000:]
    # the entry's keys over mobilenet's arch_recipe (epochs 10, sgd) and its arch_options
    for option in ("--epochs 3", "--optimizer sgd", "--temperature 2", "--soft-targets offline",
                   "--arch-option alpha=0.25", "--image-size 56"):
        assert option in student[0], option
    compare = re.findall(r"-m kerascv_emotion compare (.*) --out results/faces/comparison", result.stdout)
    assert compare and compare[0].split()[-2:] == ["results/faces/ens", "results/faces/small"]
    for run in ("ens", "small"):
        assert f"evaluate results/faces/{run} " in result.stdout and f"report results/faces/{run} " in result.stdout


def test_seeds_train_more_runs_of_an_arch_for_an_ensemble(tmp_path: Path) -> None:
    made = _faces_with_made_runs(tmp_path, seeds={"vgg": [7, 8]}, ensembles={"ensemble": ["vgg", "vgg_seed7", "vgg_seed8"]})
    result = _snakemake("-n", "-p", "--cores", "4", "--configfile", str(made), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    trains = {run: line for line in result.stdout.splitlines()
              for run in re.findall(r"-m kerascv_emotion train .* --out results/faces/(\S+) ", line)}
    assert {"vgg", "vgg_seed7", "vgg_seed8"} <= set(trains)
    for run, seed in (("vgg", 0), ("vgg_seed7", 7), ("vgg_seed8", 8)):
        assert "--arch vgg " in trains[run] and len(re.findall(r"--seed (\d+)", trains[run])) == 1
        assert f"--seed {seed} " in trains[run], trains[run]
    assert trains["vgg"].split("--seed")[0] == trains["vgg_seed7"].split("--seed")[0].replace("vgg_seed7", "vgg")
    assert re.search(r"ensemble results/faces/vgg results/faces/vgg_seed7 results/faces/vgg_seed8 ", result.stdout)
    assert "report results/faces/vgg_seed8 " in result.stdout


@pytest.mark.parametrize(("faces", "message"), [
    ({"ensembles": {"ens": ["alexnet", "covid"]}}, "datasets.faces.ensembles.ens: 'covid' is not one of"),
    ({"ensembles": {"vgg": ["alexnet", "mobilenet"]}}, "the run name 'vgg' is used twice"),
    ({"distill": {"s": {"teacher": "nope", "arch": "vgg"}}}, "datasets.faces.distill.s.teacher: 'nope' is not"),
    ({"seeds": {"covid": [1]}}, "datasets.faces.seeds: 'covid' is not in its archs"),
    ({"seeds": {"vgg": [0, 1]}}, "datasets.faces.seeds.vgg: 0 is the dataset's own seed"),
    ({"distill": {"s": {"teacher": "vgg", "arch": "keras:NoSuchNet"}}},
     "datasets.faces.distill.s.arch: 'keras:NoSuchNet' is not a model"),
])
def test_bad_ensembles_and_students_are_clear_errors(tmp_path: Path, faces: dict, message: str) -> None:
    result = _snakemake("-n", "--cores", "1", "--configfile", str(_faces_with_made_runs(tmp_path, **faces)),
                        cwd=tmp_path)
    assert result.returncode != 0 and message in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr  # one line, not Snakemake's traceback


def test_distill_defaults_have_one_home() -> None:
    """temperature, alpha and soft_targets: DistillSettings's defaults in the CLI (help included), the schema's
    `distill` entries and a rule flag; distill's training options default as train's."""
    from kerascv_emotion.settings import DISTILL_DEFAULTS, TRAIN_DEFAULTS

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    entry = schema["properties"]["datasets"]["additionalProperties"]["properties"]["distill"]
    properties = entry["additionalProperties"]["properties"]
    distill = _cli_defaults("distill", [str(REPO), "--arch", "vgg", "--out", "run"])
    for name, default in DISTILL_DEFAULTS.items():
        assert distill[name] == default and properties[name]["default"] == default, name
        assert name in _rule_flags()["DISTILL_FLAGS"], name
    for name, default in TRAIN_DEFAULTS.items():
        if name in distill and name not in ("image_size", "channels"):  # these default to the teacher's
            assert distill[name] in (default, str(default), "none" if default is None else default), name


def test_schema_choices_are_the_librarys() -> None:
    """Every schema enum of an optimizer, learning-rate schedule, soft-target mode or TTA mode,
    wherever it appears, lists exactly the library's choices (settings.py, inference.py)."""
    from kerascv_emotion.inference import TTA_MODES
    from kerascv_emotion.settings import LR_SCHEDULES, OPTIMIZERS, SOFT_TARGETS

    choices = {"optimizer": OPTIMIZERS, "lr_schedule": LR_SCHEDULES, "soft_targets": SOFT_TARGETS, "tta": TTA_MODES}
    seen: dict[str, int] = dict.fromkeys(choices, 0)

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in choices and isinstance(value, dict) and "enum" in value:
                    assert set(value["enum"]) == set(choices[key]), key
                    seen[key] += 1
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text()))
    assert all(seen.values()), seen
