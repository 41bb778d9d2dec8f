"""``kerascv-emotion evaluate``: a run's predictions and metrics on a split or a labelled folder;
``calibrate``: fit (or refit) a run's temperature; ``correct-prior``: a balanced-weight run's
prior-corrected copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kerascv_emotion.cli.options import (
    calibration_option,
    device_options,
    max_pixels_option,
    refresh_cache_option,
    setup_devices,
    split_option,
    with_options,
)
from kerascv_emotion.inference import TTA_MODES


def _calibration_line(calibration: dict[str, Any]) -> str:
    """``ECE 0.120 -> 0.031 (temperature 1.84)``, or the raw ECE when no temperature was applied;
    with the evaluation's ``mismatch`` sentence when the temperature was fitted for other outputs."""
    raw, scaled = calibration["raw"]["ece"], calibration["calibrated"]
    if scaled is None:
        return f"ECE {raw:.3f} (no temperature applied)"
    mismatch = calibration["mismatch"]
    return (f"ECE {raw:.3f} -> {scaled['ece']:.3f} (temperature {calibration['temperature']:.3f})"
            + (f"; {mismatch}" if mismatch else ""))


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--index", "index_path", default=None, type=click.Path(path_type=Path),
              help="Default: the index the run was trained on.")
@click.option("--data", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Instead of an index: a labelled folder, DATA/<class>/* or DATA/test/<class>/*.")
@split_option
@click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(min=0),
              help="Bootstrap resamples for intervals (0: none).")
@click.option("--seed", default=0, show_default=True, help="Bootstrap seed.")
@click.option("--tta", type=click.Choice(list(TTA_MODES)), default="none", show_default=True,
              help="Test-time augmentation: hflip averages each image's outputs with its mirror's; "
                   "crops over five crops and their mirrors.")
@max_pixels_option
@refresh_cache_option
@calibration_option
@with_options(device_options)
def evaluate(run: Path, index_path: Path | None, data: Path | None, split: str, bootstrap: int, seed: int,
             tta: str, max_pixels: int | None, refresh_cache: bool, calibrate: bool, threads: int, gpus: int) -> None:
    """Predict a split with RUN's model; write predictions and metrics JSON under RUN/eval/SPLIT
    (RUN/eval/data-NAME for --data NAME)."""
    setup_devices(threads, gpus)
    from kerascv_emotion.evaluation import evaluate as evaluate_run
    from kerascv_emotion.runs import eval_dir

    metrics = evaluate_run(run, index_path, split=split, bootstrap=bootstrap, seed=seed, tta=tta,
                           max_pixels=max_pixels, data=data, refresh_cache=refresh_cache, calibrate=calibrate)
    classification = metrics["task"] == "classification"
    for note in metrics.get("notes", []) if data is not None else []:
        click.echo(f"note: {note}")
    split = metrics["split"]
    if classification:
        plain = metrics.get("without_tta")
        click.echo(f"{run} {split}: accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['macro_avg']['f1']:.3f}"
                   + (f" (tta {tta}; without: accuracy {plain['accuracy']:.3f})" if plain else ""))
        click.echo(_calibration_line(metrics["calibration"]))
    else:
        mean = metrics["mean"]
        click.echo(f"{run} {split}: RMSE {mean['rmse']:.3f}, CCC {mean['ccc']:.3f}")
    click.echo(f"wrote {eval_dir(run, split, data) / 'metrics.json'}")


@click.command()
@click.argument("run", type=click.Path(path_type=Path))
@with_options(device_options)
def calibrate(run: Path, threads: int, gpus: int) -> None:
    """Fit RUN's temperature on its validation split into RUN/calibration.json (train and tune do this
    themselves; for runs trained before, or to refit)."""
    setup_devices(threads, gpus)
    from kerascv_emotion.temperature import calibrate_run

    record = calibrate_run(run)
    click.echo(f"temperature {record['temperature']:.3f}: val NLL {record['raw']['nll']:.4f} -> "
               f"{record['calibrated']['nll']:.4f}, ECE {record['raw']['ece']:.4f} -> {record['calibrated']['ece']:.4f}")
    click.echo(f"wrote {run / 'calibration.json'}")


@click.command("correct-prior")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="The new run folder.")
@with_options(device_options)
def correct_prior(run: Path, out: Path, threads: int, gpus: int) -> None:
    """Write RUN (a classifier trained with balanced class weights) into the new run folder OUT with
    log(training class frequencies) added to its output bias, so its probabilities follow the
    training class mix (the accuracy-optimal decision); OUT's temperature is fitted anew. What
    `train --prior-correction` does at the end of training."""
    setup_devices(threads, gpus)
    from kerascv_emotion.priors import correct_run_prior

    correct_run_prior(run, out)
    click.echo(f"wrote {out} (prior-corrected copy of {run})")
