"""``kerascv-emotion ensemble`` and ``distill``: runs made from other runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kerascv_emotion.cli.options import (
    check_arch,
    device_options,
    parse_arch_options,
    settings_fields,
    settings_option,
    setup_devices,
    training_options,
    with_options,
)
from kerascv_emotion.data.images import MAX_IMAGE_SIDE
from kerascv_emotion.errors import ConfigError
from kerascv_emotion.settings import DISTILL_DEFAULTS, SOFT_TARGETS


def _parse_weights(text: str | None) -> list[float] | None:
    """``"0.6,0.4"`` -> ``[0.6, 0.4]``; ``None`` stays (equal weights)."""
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--weights {text!r}: give comma-separated numbers, one per run, e.g. 0.6,0.4") from None


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@click.option("--weights", default=None, help="Comma-separated weight per run (default equal), scaled to sum to 1.")
@with_options(device_options)
def ensemble(runs: tuple[Path, ...], out: Path, weights: str | None, threads: int, gpus: int) -> None:
    """Write OUT: one model averaging the probabilities of the finished RUNS (same task and
    classes; input sizes may differ), a run like any other for evaluate, report, compare,
    predict, export and distill."""
    from kerascv_emotion.ensemble import member_configs, normalised_weights

    member_configs(runs)  # fail fast, before TensorFlow starts
    parsed = normalised_weights(_parse_weights(weights), len(runs))
    setup_devices(threads, gpus)
    from kerascv_emotion.ensemble import ensemble as ensemble_runs

    run = ensemble_runs(runs, out, parsed)
    click.echo(f"wrote {run / 'model.keras'}")


@click.command()
@click.argument("teacher", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--arch", required=True, help="The student: alexnet, vgg, mobilenet, covid or keras:<Application>.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@click.option("--index", "index_path", default=None, type=click.Path(path_type=Path),
              help="Default: the index the teacher was trained on.")
@click.option("--image-size", type=click.IntRange(8, MAX_IMAGE_SIDE), default=None,
              help="The student's input side in pixels (default: the teacher's).")
@click.option("--channels", type=click.Choice(["1", "3"]), default=None, help="Default: the teacher's.")
@settings_option("--epochs", "epochs", type=click.IntRange(min=1))
@settings_option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True),
                 help="Learning rate (peak rate of a cosine schedule).")
@click.option("--arch-option", "arch_options", multiple=True, metavar="KEY=VALUE",
              help="An option of the student's builder, e.g. alpha=0.5 (repeatable).")
@settings_option("--temperature", "temperature", DISTILL_DEFAULTS, type=click.FloatRange(min=0, min_open=True),
                 help="Softens both distributions of the soft-target loss.")
@settings_option("--alpha", "alpha", DISTILL_DEFAULTS, type=click.FloatRange(0, 1),
                 help="Weight of the label loss; 1 - alpha weighs the soft targets.")
@settings_option("--soft-targets", "soft_targets", DISTILL_DEFAULTS, type=click.Choice(SOFT_TARGETS),
                 help="online: the teacher sees every augmented batch; offline: its flip-averaged outputs "
                      "per training image, computed once (epochs then cost what plain training does).")
@with_options(training_options + device_options)
def distill(teacher: Path, arch: str, out: Path, index_path: Path | None, image_size: int | None,
            channels: str | None, arch_options: tuple[str, ...], temperature: float, alpha: float,
            soft_targets: str, restart: bool, refresh_cache: bool, threads: int, gpus: int, **options: Any) -> None:
    """Train a student ARCH into OUT on the soft targets of the finished run TEACHER (an
    ensemble too) plus the labels (a killed run resumes when rerun)."""
    from kerascv_emotion.data.index import read_index
    from kerascv_emotion.runs import read_config

    config = read_config(teacher)
    index = index_path or Path(config["index"])
    read_index(index)  # fail fast on a missing or malformed index
    setup_devices(threads, gpus)
    check_arch(arch)
    from kerascv_emotion.distillation import distill as distill_run
    from kerascv_emotion.settings import DistillSettings, TrainSettings

    student = TrainSettings(arch=arch, index=str(index), image_size=image_size or int(config["image_size"]),
                            channels=int(channels or config["channels"]), **settings_fields(options),
                            arch_kwargs=parse_arch_options(arch_options))
    settings = DistillSettings(teacher=str(teacher), train=student, temperature=temperature, alpha=alpha,
                               soft_targets=soft_targets)
    run = distill_run(settings, out, restart=restart, refresh_cache=refresh_cache)
    click.echo(f"wrote {run / 'model.keras'}")
