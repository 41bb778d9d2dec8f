"""``kerascv-emotion``: a thin click layer over the library (every Snakemake rule calls it).

Library errors (:class:`~kerascv_emotion.errors.KerasCVEmotionError`) and filesystem errors
(``OSError``: a full disk, a read-only or missing folder) are printed as one line and exit with
status 1; any other exception is a bug and keeps its traceback. TensorFlow is imported only by
the commands that need it, quietly unless ``--verbose``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from kerascv_emotion import __version__
from kerascv_emotion.data.images import MAX_IMAGE_SIDE, MAX_PIXELS_OPTION
from kerascv_emotion.data.index import SPLITS
from kerascv_emotion.errors import ConfigError, KerasCVEmotionError
from kerascv_emotion.inference import TTA_MODES
from kerascv_emotion.settings import LR_SCHEDULES, OPTIMIZERS, TRAIN_DEFAULTS, TUNE_DEFAULTS
from kerascv_emotion.tasks import TASKS

log = logging.getLogger("kerascv_emotion")


def _error_line(exc: KerasCVEmotionError | OSError) -> str:
    """The one line the CLI prints for a library or filesystem error (after ``Error: ``):
    an OSError as ``PATH: cause`` (``SRC -> DST: cause`` for a rename)."""
    if isinstance(exc, OSError):
        cause = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename is None:
            return cause
        where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
        return f"{where}: {cause}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class _Group(click.Group):
    """Turns library and filesystem errors into ``Error: <one line>`` and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (KerasCVEmotionError, OSError) as exc:
            raise click.ClickException(_error_line(exc)) from None


def _import_tensorflow() -> None:
    """Import TensorFlow, quietly unless the global ``--verbose`` was given."""
    from kerascv_emotion.devices import import_tensorflow

    import_tensorflow(verbose=click.get_current_context().find_root().params.get("verbose", False))


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="kerascv-emotion")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
@click.option("-v", "--verbose", is_flag=True, help="Also show TensorFlow's own start-up and C++ log lines.")
def main(quiet: bool, verbose: bool) -> None:
    """Train, tune, evaluate, report and compare CNN classifiers for facial affect and X-rays."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _split_pairs(option: str, pairs: tuple[str, ...], usage: str) -> list[tuple[str, str]]:
    """``("a=b", ...)`` of a repeatable ``option`` -> ``[("a", "b"), ...]`` (split at the first
    ``=``); a pair without ``=`` is a one-line error quoting ``usage``."""
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"{option} {pair!r}: {usage}")
        out.append((key, value))
    return out


def _check_arch(arch: str) -> None:
    from kerascv_emotion.models import available_models

    names = available_models()
    if arch not in names:
        raise ConfigError(f"unknown --arch {arch!r}; available: {', '.join(names)}")


def _parse_arch_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("dropout=0.2", "alpha=0.5")`` -> ``{"dropout": 0.2, "alpha": 0.5}``; a value is read
    as JSON (numbers, true/false, null), else kept as a string."""
    options: dict[str, Any] = {}
    usage = "write KEY=VALUE, e.g. dropout=0.2"
    for key, value in _split_pairs("--arch-option", pairs, usage):
        if not key.strip():
            raise ConfigError(f"--arch-option {key + '=' + value!r}: {usage}")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _augment_option(value: str) -> str | dict | None:
    """``--augment`` takes a pipeline name, ``none``, or a JSON object for a custom pipeline."""
    if value.strip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--augment: not valid JSON ({exc})") from None
    return None if value == "none" else value


_split_option = click.option("--split", default="test", show_default=True, type=click.Choice(SPLITS))


def _option(flag: str, name: str, defaults: Mapping[str, Any] = TRAIN_DEFAULTS, **kwargs: Any) -> Any:
    """A click option for the settings field ``name``, with the settings' own default."""
    default = defaults[name]
    if isinstance(kwargs.get("type"), click.Choice) and default is not None:
        default = str(default)
    return click.option(flag, name, default=default, show_default=default is not None and default is not False, **kwargs)


_max_pixels_option = _option(MAX_PIXELS_OPTION, "max_pixels", type=click.IntRange(min=1),
                             help="Refuse images with more pixels than this (default: Pillow's limit, about 89 million).")
_calibration_option = click.option(
    "--no-calibration", "calibrate", is_flag=True, flag_value=False, default=True,
    help="Use the model's raw probabilities, not divided by the run's temperature (RUN/calibration.json).")

_refresh_cache_option = click.option(
    "--refresh-cache", is_flag=True,
    help="Decode every image again instead of reusing the image cache (images changed on disk are always decoded again).")

# options of both train and tune, each named as its TrainSettings field (--restart and
# --refresh-cache aside: they change how, not what, a run trains)
_settings_options = [
    _option("--batch-size", "batch_size", type=click.IntRange(min=1)),
    _option("--augment", "augment", help="Pipeline name (paper_face, crop_erase, covid_paper, light, none) or a JSON dict."),
    _option("--seed", "seed", type=int, help="Seeds Python, NumPy, TensorFlow and Keras."),
    _option("--deterministic", "deterministic", is_flag=True,
            help="TensorFlow op determinism: bit-identical reruns, at a throughput cost."),
    _option("--precise-bn-images", "precise_bn_images", type=click.IntRange(min=0),
            help="Training images the BatchNorm statistics are recomputed from each epoch (0: off)."),
    _option("--class-weight", "class_weight", type=click.Choice(["balanced", "none"])),
    _option("--monitor", "monitor", help="Metric for the best epoch (default val_macro_f1 / val_ccc_mean)."),
    _option("--optimizer", "optimizer", type=click.Choice(list(OPTIMIZERS)),
            help="adam (the paper's), adamw, or sgd with Nesterov momentum 0.9."),
    _option("--lr-schedule", "lr_schedule", type=click.Choice(list(LR_SCHEDULES)),
            help="constant, or cosine decay to 0 (after --warmup-epochs of linear warm-up)."),
    _option("--warmup-epochs", "warmup_epochs", type=click.IntRange(min=0)),
    _option("--weight-decay", "weight_decay", type=click.FloatRange(min=0),
            help="Decoupled weight decay (AdamW's; also applied by adam and sgd when > 0)."),
    _option("--label-smoothing", "label_smoothing", type=click.FloatRange(0, 1, max_open=True)),
    _option("--ema-momentum", "ema_momentum", type=click.FloatRange(0, 1, max_open=True),
            help="Validate and save a moving average of the weights (Keras's optimizer EMA), e.g. 0.999 (0: off)."),
    _option("--mixup-alpha", "mixup_alpha", type=click.FloatRange(min=0),
            help="Mixup of each training batch, lambda ~ Beta(alpha, alpha), e.g. 0.2 (0: off)."),
    _option("--cutmix-alpha", "cutmix_alpha", type=click.FloatRange(min=0),
            help="CutMix of each training batch, e.g. 1.0 (0: off; with --mixup-alpha one of the two per batch)."),
    _option("--patience", "patience", type=click.IntRange(min=1), help="EarlyStopping patience (off by default)."),
    _option("--reduce-lr-patience", "reduce_lr_patience", type=click.IntRange(min=1),
            help="ReduceLROnPlateau patience (off by default)."),
    _option("--tensorboard", "tensorboard", is_flag=True),
    _option("--mixed-precision", "mixed_precision", is_flag=True, help="mixed_float16 on a GPU (ignored on CPU)."),
    _option("--on-bad-image", "on_bad_image", type=click.Choice(["skip", "fail"])),
    _max_pixels_option,
    _option("--workers", "workers", type=click.IntRange(min=1), help="Loader worker threads."),
    _option("--cache-dir", "cache_dir", type=click.Path(file_okay=False),
            help="Image cache folder (default: $KERASCV_EMOTION_CACHE, else beside the index)."),
    click.option("--restart", is_flag=True,
                 help="Discard the state of an interrupted run in --out and start over (else it resumes)."),
    _refresh_cache_option,
]


def _settings(options: dict[str, Any]) -> dict[str, Any]:
    """CLI option values -> settings field values (``none`` -> None, JSON ``--augment``)."""
    out = dict(options)
    if "class_weight" in out:
        out["class_weight"] = None if out["class_weight"] == "none" else out["class_weight"]
    if "augment" in out:
        out["augment"] = _augment_option(out["augment"])
    if "channels" in out:
        out["channels"] = int(out["channels"])
    return out


_device_options = [
    click.option("--threads", default=0, show_default=True, type=click.IntRange(min=0),
                 help="TensorFlow CPU threads (0: TensorFlow's default, all cores)."),
    click.option("--gpus", default=0, show_default=True, type=click.IntRange(min=0),
                 help="GPUs on this machine; the job claims a free one (0: leave CUDA_VISIBLE_DEVICES alone)."),
]


def _setup_devices(threads: int, gpus: int) -> None:
    """Claim a GPU (before TensorFlow starts), import TensorFlow, set its CPU threads."""
    from kerascv_emotion.devices import claim_gpu, set_cpu_threads

    claim_gpu(gpus)
    _import_tensorflow()
    set_cpu_threads(threads)


def _with(options: list[Any]) -> Any:
    def wrap(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func
    return wrap


@main.command()
@click.option("--index", "index_path", required=True, type=click.Path(path_type=Path))
@click.option("--arch", required=True, help="alexnet, vgg, mobilenet, covid or keras:<Application>.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@_option("--task", "task", type=click.Choice(list(TASKS)))
@_option("--image-size", "image_size", type=click.IntRange(8, MAX_IMAGE_SIDE),
         help="Side of the square model input in pixels.")
@_option("--channels", "channels", type=click.Choice(["1", "3"]))
@_option("--epochs", "epochs", type=click.IntRange(min=1))
@_option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True),
         help="Learning rate (peak rate of a cosine schedule).")
@click.option("--weights", default=None, help="keras:<Application> only: a local weights file.")
@click.option("--arch-option", "arch_options", multiple=True, metavar="KEY=VALUE",
              help="An option of the architecture's builder, e.g. dropout=0.2 or alpha=0.5 (repeatable).")
@_with(_settings_options + _device_options)
def train(index_path: Path, arch: str, out: Path, weights: str | None, arch_options: tuple[str, ...],
          restart: bool, refresh_cache: bool, threads: int, gpus: int, **options: Any) -> None:
    """Train one model on an index into the run directory OUT (a killed run resumes when rerun)."""
    from kerascv_emotion.data.index import read_index

    read_index(index_path)  # fail fast on a missing or malformed index
    _setup_devices(threads, gpus)
    _check_arch(arch)
    from kerascv_emotion.settings import TrainSettings
    from kerascv_emotion.training import train as train_run

    settings = TrainSettings(
        arch=arch, index=str(index_path), **_settings(options),
        arch_kwargs=_parse_arch_options(arch_options) | ({"weights": weights} if weights else {}),
    )
    run = train_run(settings, out, restart=restart, refresh_cache=refresh_cache)
    click.echo(f"wrote {run / 'model.keras'}")


@main.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--index", "index_path", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@_option("--task", "task", TUNE_DEFAULTS, type=click.Choice(list(TASKS)),
         help="Change the task (e.g. regression: a new Dense(2) valence/arousal head; default: the model's).")
@_option("--head-epochs", "head_epochs", TUNE_DEFAULTS, type=click.IntRange(min=0))
@_option("--finetune-epochs", "finetune_epochs", TUNE_DEFAULTS, type=click.IntRange(min=0))
@_option("--head-lr", "head_learning_rate", TUNE_DEFAULTS, type=click.FloatRange(min=0, min_open=True))
@_option("--finetune-lr", "finetune_learning_rate", TUNE_DEFAULTS, type=click.FloatRange(min=0, min_open=True))
@_option("--unfreeze-blocks", "unfreeze_blocks", TUNE_DEFAULTS, type=click.IntRange(min=0),
         help="Unfreeze only the last K blocks (default all).")
@_with(_settings_options + _device_options)
def tune(model: Path, index_path: Path, out: Path, restart: bool, refresh_cache: bool, threads: int, gpus: int,
         **options: Any) -> None:
    """Fine-tune MODEL (a .keras file or a run directory): head first, then unfrozen at a low rate."""
    from kerascv_emotion.data.index import read_index

    read_index(index_path)
    _setup_devices(threads, gpus)
    from kerascv_emotion.finetune import tune as tune_run
    from kerascv_emotion.settings import TuneSettings

    settings = TuneSettings.create(str(model), str(index_path), **_settings(options))
    run = tune_run(settings, out, restart=restart, refresh_cache=refresh_cache)
    click.echo(f"wrote {run / 'model.keras'}")


def _calibration_line(calibration: dict[str, Any]) -> str:
    """``ECE 0.120 -> 0.031 (temperature 1.84)``, or the raw ECE when no temperature was applied."""
    raw, scaled = calibration["raw"]["ece"], calibration["calibrated"]
    if scaled is None:
        return f"ECE {raw:.3f} (no temperature applied)"
    return f"ECE {raw:.3f} -> {scaled['ece']:.3f} (temperature {calibration['temperature']:.3f})"


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--index", "index_path", default=None, type=click.Path(path_type=Path),
              help="Default: the index the run was trained on.")
@click.option("--data", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Instead of an index: a labelled folder, DATA/<class>/* or DATA/test/<class>/*.")
@_split_option
@click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Bootstrap resamples for intervals (0: none).")
@click.option("--seed", default=0, show_default=True, help="Bootstrap seed.")
@click.option("--tta", type=click.Choice(list(TTA_MODES)), default="none", show_default=True,
              help="Test-time augmentation: hflip averages each image's outputs with its mirror's; "
                   "crops over five crops and their mirrors.")
@_max_pixels_option
@_refresh_cache_option
@_calibration_option
@_with(_device_options)
def evaluate(run: Path, index_path: Path | None, data: Path | None, split: str, bootstrap: int, seed: int,
             tta: str, max_pixels: int | None, refresh_cache: bool, calibrate: bool, threads: int, gpus: int) -> None:
    """Predict a split with RUN's model; write predictions and metrics JSON under RUN/eval/SPLIT
    (RUN/eval/data-NAME for --data NAME)."""
    _setup_devices(threads, gpus)
    from kerascv_emotion.evaluation import evaluate as evaluate_run
    from kerascv_emotion.runs import eval_dir

    metrics = evaluate_run(run, index_path, split=split, bootstrap=bootstrap, seed=seed, tta=tta,
                           max_pixels=max_pixels, data=data, refresh_cache=refresh_cache, calibrate=calibrate)
    for note in metrics.get("notes", []) if data is not None else []:
        click.echo(f"note: {note}")
    split = metrics["split"]
    if metrics["task"] == "classification":
        plain = metrics.get("without_tta")
        click.echo(f"{run} {split}: accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['macro_avg']['f1']:.3f}"
                   + (f" (tta {tta}; without: accuracy {plain['accuracy']:.3f})" if plain else ""))
        click.echo(_calibration_line(metrics["calibration"]))
    else:
        mean = metrics["mean"]
        click.echo(f"{run} {split}: RMSE {mean['rmse']:.3f}, CCC {mean['ccc']:.3f}")
    click.echo(f"wrote {eval_dir(run, split, data) / 'metrics.json'}")


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@_with(_device_options)
def calibrate(run: Path, threads: int, gpus: int) -> None:
    """Fit RUN's temperature on its validation split into RUN/calibration.json (train and tune do this
    themselves; for runs trained before, or to refit)."""
    _setup_devices(threads, gpus)
    from kerascv_emotion.temperature import calibrate_run

    record = calibrate_run(run)
    click.echo(f"temperature {record['temperature']:.3f}: val NLL {record['raw']['nll']:.4f} -> "
               f"{record['calibrated']['nll']:.4f}, ECE {record['raw']['ece']:.4f} -> {record['calibrated']['ece']:.4f}")
    click.echo(f"wrote {run / 'calibration.json'}")


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_split_option
@click.option("--out", default=None, type=click.Path(file_okay=False, path_type=Path), help="Default RUN/report.")
def report(run: Path, split: str, out: Path | None) -> None:
    """Write RUN's figures and report.html (needs `evaluate` first for the test figures)."""
    from kerascv_emotion.reporting import write_run_report

    html = write_run_report(run, split=split, out_dir=out)
    click.echo(f"wrote {html}")


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@_split_option
def compare(runs: tuple[Path, ...], out: Path, split: str) -> None:
    """Compare several evaluated runs side by side into OUT/comparison.html."""
    from kerascv_emotion.reporting import write_comparison
    from kerascv_emotion.reporting.comparison import comparison_notes

    html = write_comparison(list(runs), out, split=split)
    for note in comparison_notes(list(runs), split=split):
        click.echo(f"note: {note}")
    click.echo(f"wrote {html}")


@main.command("models")
def models_command() -> None:
    """List the architectures `--arch` accepts."""
    _import_tensorflow()
    from kerascv_emotion.models import available_models

    for name in available_models():
        click.echo(name)


import kerascv_emotion.cli_data  # noqa: E402, F401  (registers synth and index on main)
import kerascv_emotion.cli_deploy  # noqa: E402, F401  (registers predict and export on main)
import kerascv_emotion.cli_ensemble  # noqa: E402, F401  (registers ensemble and distill on main)

if __name__ == "__main__":  # pragma: no cover
    main()
