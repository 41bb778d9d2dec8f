"""Options and helpers that several ``kerascv-emotion`` commands share: the settings options of
train, tune and distill (each with its settings field's default), the device options, argument
parsers, and :func:`setup_devices`, which starts TensorFlow for the commands that need it.

Imports no command module and not the ``main`` group (``kerascv_emotion.cli``), so every
command module can import it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click

from kerascv_emotion.data.images import MAX_PIXELS_OPTION
from kerascv_emotion.data.index import SPLITS
from kerascv_emotion.errors import ConfigError
from kerascv_emotion.settings import LR_SCHEDULES, OPTIMIZERS, TRAIN_DEFAULTS


def start_tensorflow() -> None:
    """Import TensorFlow, quietly unless the global ``--verbose`` was given."""
    from kerascv_emotion.devices import import_tensorflow

    import_tensorflow(verbose=click.get_current_context().find_root().params.get("verbose", False))


def split_pairs(option: str, pairs: tuple[str, ...], usage: str) -> list[tuple[str, str]]:
    """``("a=b", ...)`` of a repeatable ``option`` -> ``[("a", "b"), ...]`` (split at the first
    ``=``); a pair without ``=`` is a one-line error quoting ``usage``."""
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"{option} {pair!r}: {usage}")
        out.append((key, value))
    return out


def check_arch(arch: str) -> None:
    """A one-line error unless ``--arch`` names a registered architecture."""
    from kerascv_emotion.model_catalog import available_models  # no TensorFlow

    names = available_models()
    if arch not in names:
        raise ConfigError(f"unknown --arch {arch!r}; available: {', '.join(names)}")


def parse_arch_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("dropout=0.2", "alpha=0.5")`` -> ``{"dropout": 0.2, "alpha": 0.5}``; a value is read
    as JSON (numbers, true/false, null), else kept as a string."""
    options: dict[str, Any] = {}
    usage = "write KEY=VALUE, e.g. dropout=0.2"
    for key, value in split_pairs("--arch-option", pairs, usage):
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


split_option = click.option("--split", default="test", show_default=True, type=click.Choice(SPLITS))


def settings_option(flag: str, name: str, defaults: Mapping[str, Any] = TRAIN_DEFAULTS, **kwargs: Any) -> Any:
    """A click option for the settings field ``name``, with the settings' own default."""
    default = defaults[name]
    if isinstance(kwargs.get("type"), click.Choice) and default is not None:
        default = str(default)
    return click.option(flag, name, default=default, show_default=default is not None and default is not False, **kwargs)


max_pixels_option = settings_option(MAX_PIXELS_OPTION, "max_pixels", type=click.IntRange(min=1),
                                    help="Refuse images with more pixels than this (default: Pillow's limit, about 89 million).")
calibration_option = click.option(
    "--no-calibration", "calibrate", is_flag=True, flag_value=False, default=True,
    help="Use the model's raw probabilities, not divided by the run's temperature (RUN/calibration.json).")

refresh_cache_option = click.option(
    "--refresh-cache", is_flag=True,
    help="Decode every image again instead of reusing the image cache (images changed on disk are always decoded again).")

# options of train, tune and distill, each named as its TrainSettings field (--restart and
# --refresh-cache aside: they change how, not what, a run trains)
training_options = [
    settings_option("--batch-size", "batch_size", type=click.IntRange(min=1)),
    settings_option("--augment", "augment", help="Pipeline name (paper_face, crop_erase, covid_paper, light, none) or a JSON dict."),
    settings_option("--seed", "seed", type=int, help="Seeds Python, NumPy, TensorFlow and Keras."),
    settings_option("--deterministic", "deterministic", is_flag=True,
                    help="TensorFlow op determinism: bit-identical reruns, at a throughput cost."),
    settings_option("--precise-bn-images", "precise_bn_images", type=click.IntRange(min=0),
                    help="Training images the BatchNorm statistics are recomputed from each epoch (0: off)."),
    settings_option("--class-weight", "class_weight", type=click.Choice(["balanced", "none"])),
    settings_option("--prior-correction", "prior_correction", is_flag=True,
                    help="With balanced class weights: add log(training class frequencies) to the output "
                         "bias after training, so the probabilities follow the training class mix "
                         "(accuracy-optimal) instead of a balanced one."),
    settings_option("--monitor", "monitor", help="Metric for the best epoch (default val_macro_f1 / val_ccc_mean)."),
    settings_option("--optimizer", "optimizer", type=click.Choice(list(OPTIMIZERS)),
                    help="adam (the paper's), adamw, or sgd with Nesterov momentum 0.9."),
    settings_option("--lr-schedule", "lr_schedule", type=click.Choice(list(LR_SCHEDULES)),
                    help="constant, or cosine decay to 0 (after --warmup-epochs of linear warm-up)."),
    settings_option("--warmup-epochs", "warmup_epochs", type=click.IntRange(min=0)),
    settings_option("--weight-decay", "weight_decay", type=click.FloatRange(min=0),
                    help="Decoupled weight decay (AdamW's; also applied by adam and sgd when > 0)."),
    settings_option("--label-smoothing", "label_smoothing", type=click.FloatRange(0, 1, max_open=True)),
    settings_option("--ema-momentum", "ema_momentum", type=click.FloatRange(0, 1, max_open=True),
                    help="Validate and save a moving average of the weights (Keras's optimizer EMA), e.g. 0.999 (0: off)."),
    settings_option("--mixup-alpha", "mixup_alpha", type=click.FloatRange(min=0),
                    help="Mixup of each training batch, lambda ~ Beta(alpha, alpha), e.g. 0.2 (0: off)."),
    settings_option("--cutmix-alpha", "cutmix_alpha", type=click.FloatRange(min=0),
                    help="CutMix of each training batch, e.g. 1.0 (0: off; with --mixup-alpha one of the two per batch)."),
    settings_option("--patience", "patience", type=click.IntRange(min=1), help="EarlyStopping patience (off by default)."),
    settings_option("--reduce-lr-patience", "reduce_lr_patience", type=click.IntRange(min=1),
                    help="ReduceLROnPlateau patience (off by default)."),
    settings_option("--tensorboard", "tensorboard", is_flag=True),
    settings_option("--mixed-precision", "mixed_precision", is_flag=True, help="mixed_float16 on a GPU (ignored on CPU)."),
    settings_option("--on-bad-image", "on_bad_image", type=click.Choice(["skip", "fail"])),
    max_pixels_option,
    settings_option("--workers", "workers", type=click.IntRange(min=1), help="Loader worker threads."),
    settings_option("--cache-dir", "cache_dir", type=click.Path(file_okay=False),
                    help="Image cache folder (default: $KERASCV_EMOTION_CACHE, else beside the index)."),
    click.option("--restart", is_flag=True,
                 help="Discard the state of an interrupted run in --out and start over (else it resumes)."),
    refresh_cache_option,
]


def settings_fields(options: dict[str, Any]) -> dict[str, Any]:
    """CLI option values -> settings field values (``none`` -> None, JSON ``--augment``)."""
    out = dict(options)
    if "class_weight" in out:
        out["class_weight"] = None if out["class_weight"] == "none" else out["class_weight"]
    if "augment" in out:
        out["augment"] = _augment_option(out["augment"])
    if "channels" in out:
        out["channels"] = int(out["channels"])
    return out


device_options = [
    click.option("--threads", default=0, show_default=True, type=click.IntRange(min=0),
                 help="TensorFlow CPU threads (0: TensorFlow's default, all cores)."),
    click.option("--gpus", default=0, show_default=True, type=click.IntRange(min=0),
                 help="GPUs on this machine; the job claims a free one (0: leave CUDA_VISIBLE_DEVICES alone)."),
]


def setup_devices(threads: int, gpus: int) -> None:
    """Claim a GPU (before TensorFlow starts), import TensorFlow, set its CPU threads."""
    from kerascv_emotion.devices import claim_gpu, set_cpu_threads

    claim_gpu(gpus)
    start_tensorflow()
    set_cpu_threads(threads)


def with_options(options: list[Any]) -> Any:
    """A decorator applying the click ``options`` to a command, in their order."""
    def wrap(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func
    return wrap
