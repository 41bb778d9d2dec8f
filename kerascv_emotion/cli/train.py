"""``kerascv-emotion train`` and ``tune``: train a model, or fine-tune one, into a run folder;
``models``: the architectures ``--arch`` accepts."""

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
    start_tensorflow,
    training_options,
    with_options,
)
from kerascv_emotion.data.images import MAX_IMAGE_SIDE
from kerascv_emotion.settings import TUNE_DEFAULTS
from kerascv_emotion.tasks import TASKS


@click.command()
@click.option("--index", "index_path", required=True, type=click.Path(path_type=Path))
@click.option("--arch", required=True, help="alexnet, vgg, mobilenet, covid or keras:<Application>.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@settings_option("--task", "task", type=click.Choice(list(TASKS)))
@settings_option("--image-size", "image_size", type=click.IntRange(8, MAX_IMAGE_SIDE),
                 help="Side of the square model input in pixels.")
@settings_option("--channels", "channels", type=click.Choice(["1", "3"]))
@settings_option("--epochs", "epochs", type=click.IntRange(min=1))
@settings_option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True),
                 help="Learning rate (peak rate of a cosine schedule).")
@click.option("--weights", default=None, help="keras:<Application> only: a local weights file.")
@click.option("--arch-option", "arch_options", multiple=True, metavar="KEY=VALUE",
              help="An option of the architecture's builder, e.g. dropout=0.2 or alpha=0.5 (repeatable).")
@with_options(training_options + device_options)
def train(index_path: Path, arch: str, out: Path, weights: str | None, arch_options: tuple[str, ...],
          restart: bool, refresh_cache: bool, threads: int, gpus: int, **options: Any) -> None:
    """Train one model on an index into the run directory OUT (a killed run resumes when rerun)."""
    from kerascv_emotion.data.index import read_index

    read_index(index_path)  # fail fast on a missing or malformed index
    setup_devices(threads, gpus)
    check_arch(arch)
    from kerascv_emotion.settings import TrainSettings
    from kerascv_emotion.training import train as train_run

    settings = TrainSettings(
        arch=arch, index=str(index_path), **settings_fields(options),
        arch_kwargs=parse_arch_options(arch_options) | ({"weights": weights} if weights else {}),
    )
    run = train_run(settings, out, restart=restart, refresh_cache=refresh_cache)
    click.echo(f"wrote {run / 'model.keras'}")


@click.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--index", "index_path", required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
@settings_option("--task", "task", TUNE_DEFAULTS, type=click.Choice(list(TASKS)),
                 help="Change the task (e.g. regression: a new Dense(2) valence/arousal head; default: the model's).")
@settings_option("--head-epochs", "head_epochs", TUNE_DEFAULTS, type=click.IntRange(min=0))
@settings_option("--finetune-epochs", "finetune_epochs", TUNE_DEFAULTS, type=click.IntRange(min=0))
@settings_option("--head-lr", "head_learning_rate", TUNE_DEFAULTS, type=click.FloatRange(min=0, min_open=True))
@settings_option("--finetune-lr", "finetune_learning_rate", TUNE_DEFAULTS, type=click.FloatRange(min=0, min_open=True))
@settings_option("--unfreeze-blocks", "unfreeze_blocks", TUNE_DEFAULTS, type=click.IntRange(min=0),
                 help="Unfreeze only the last K blocks (default all).")
@with_options(training_options + device_options)
def tune(model: Path, index_path: Path, out: Path, restart: bool, refresh_cache: bool, threads: int, gpus: int,
         **options: Any) -> None:
    """Fine-tune MODEL (a .keras file or a run directory): head first, then unfrozen at a low rate."""
    from kerascv_emotion.data.index import read_index

    read_index(index_path)
    setup_devices(threads, gpus)
    from kerascv_emotion.finetune import tune as tune_run
    from kerascv_emotion.settings import TuneSettings

    settings = TuneSettings.create(str(model), str(index_path), **settings_fields(options))
    run = tune_run(settings, out, restart=restart, refresh_cache=refresh_cache)
    click.echo(f"wrote {run / 'model.keras'}")


@click.command("models")
def models_command() -> None:
    """List the architectures `--arch` accepts."""
    start_tensorflow()
    from kerascv_emotion.models import available_models

    for name in available_models():
        click.echo(name)
