"""Evaluate a finished run on one split: predictions, metrics JSON (with bootstrap
intervals) and the model's measured inference speed."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.inference import predict_batches, to_input
from kerascv_emotion.io import atomic_path, read_json, write_json
from kerascv_emotion.runs import (
    MODEL,
    check_index_classes,
    eval_dir,
    load_run,
    read_config,
    temperature_mismatch,
)

log = logging.getLogger(__name__)


def measure_inference(model: Any, images: np.ndarray, batch_size: int = 32, repeats: int = 3) -> dict[str, Any]:
    """Median wall time of ``model.predict_on_batch`` per image in milliseconds.

    ``images``: uint8 ``(N, H, W, C)``; one warm-up call is excluded.
    """
    import tensorflow as tf

    batch = to_input(images[:batch_size])
    if len(batch) == 0:
        return {"ms_per_image": None, "batch_size": 0, "device": "none"}
    model.predict_on_batch(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(batch)
        times.append(time.perf_counter() - start)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    return {"ms_per_image": 1000.0 * float(np.median(times)) / len(batch), "batch_size": int(len(batch)),
            "device": device}


def scaled(outputs: np.ndarray, temperature: float | None) -> np.ndarray:
    """Probabilities ``(N, K)`` divided by ``temperature``
    (:func:`~kerascv_emotion.metrics.apply_temperature`); as given when it is ``None``."""
    from kerascv_emotion.metrics import apply_temperature

    return outputs if temperature is None else apply_temperature(outputs, temperature)


def calibration_report(y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str],
                       temperature: float | None) -> dict[str, Any]:
    """``{"temperature", "raw", "calibrated"}``: the temperature applied (``None``: none) and
    :func:`~kerascv_emotion.metrics.calibration_metrics` of the model's probabilities ``(N, K)``
    and of the temperature-scaled ones (``None`` without a temperature)."""
    from kerascv_emotion.metrics import calibration_metrics

    return {"temperature": temperature, "raw": calibration_metrics(y_true, y_prob, class_names),
            "calibrated": None if temperature is None
            else calibration_metrics(y_true, scaled(y_prob, temperature), class_names)}


def split_groups(index: Any, split: str, paths: Sequence[str]) -> list[str] | None:
    """The index's ``group`` (e.g. subject id) of each of ``paths`` in ``split``, or ``None``
    unless every one has a group; the bootstrap then resamples whole groups."""
    group_of = {r.path: r.group for r in index.records if r.split == split}
    groups = [group_of.get(path) for path in paths]
    return groups if groups and all(groups) else None  # type: ignore[return-value]


def _warn_replacing_other_data(out_dir: Path, data: Path) -> None:
    """Log a warning when ``out_dir`` (``RUN/eval/data-<folder name>``) holds the evaluation of
    another folder of the same name, which this one replaces."""
    try:
        earlier = Path(read_json(out_dir / "metrics.json")["index"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if earlier.resolve() != data.resolve():
        log.warning("%s held the evaluation of %s, which this evaluation of %s replaces", out_dir, earlier, data)


def evaluate(run_dir: str | os.PathLike, index_path: str | os.PathLike | None = None, split: str = "test",
             bootstrap: int = 1000, seed: int = 0, batch_size: int = 64,
             on_bad_image: str | None = None, tta: str = "none", max_pixels: int | None = None,
             data: str | os.PathLike | None = None, refresh_cache: bool = False,
             calibrate: bool = True) -> dict[str, Any]:
    """Predict ``split`` of the index with ``RUN/model.keras`` and write
    ``RUN/eval/<split>/predictions.npz`` and ``metrics.json``; returns the metrics dict.

    ``index_path`` defaults to the index the run was trained on. ``data``, instead of an
    index: a new labelled folder (``<class>/*`` or ``test/<class>/*``, classes matched to the
    run's by name, see :func:`~kerascv_emotion.data.readers.folders.labelled_test_index`), evaluated
    as split ``test`` into :func:`eval_dir`; classes it lacks are noted. ``bootstrap`` is the
    number of bootstrap resamples for confidence intervals (0 to skip). ``tta`` ("hflip", "crops")
    averages each image's outputs with those of its views
    (:func:`~kerascv_emotion.inference.predict_batches`); the metrics are
    then those of the averaged outputs, and ``without_tta`` holds the plain pass's headline
    figures beside them. ``on_bad_image`` and ``max_pixels`` default to the run's own settings.
    ``refresh_cache`` decodes every image again instead of reusing the image cache.
    A classification run's outputs are divided by its temperature for ``tta``
    (:func:`~kerascv_emotion.temperature.tta_temperature`; ``calibration.temperature_tta`` names
    the mode it was fitted for, a note says when that is not ``tta``) unless ``calibrate`` is
    off; ``calibration`` holds the calibration figures of both
    (:func:`calibration_report`), ``ece`` and ``bootstrap.ece`` those of the reported outputs;
    ``gallery.npz`` the images and Grad-CAM maps the report shows
    (:func:`~kerascv_emotion.explain.write_gallery`).
    """
    from kerascv_emotion.data.cache import cache_dir_for, load_split
    from kerascv_emotion.data.index import read_index
    from kerascv_emotion.data.readers.folders import labelled_test_index
    from kerascv_emotion.explain import write_gallery
    from kerascv_emotion.metrics import (
        bootstrap_intervals,
        bootstrap_regression_intervals,
        classification_metrics,
        regression_metrics,
    )
    from kerascv_emotion.temperature import run_temperature, tta_temperature

    if bootstrap < 0:
        raise ConfigError(f"bootstrap={bootstrap}: give 0 (no intervals) or the number of resamples")
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    task = config.get("task", "classification")
    missing: list[str] = []
    if data is not None:
        if index_path is not None or split != "test":
            raise ConfigError("a data folder is evaluated alone, as its test split: give no index, and split 'test'")
        index_path = Path(data)
        index, missing = labelled_test_index(data, config["class_names"])
        cache_dir = cache_dir_for(config.get("cache_dir"))
    else:
        index_path = Path(index_path or config["index"])
        index = read_index(index_path)
        cache_dir = cache_dir_for(config.get("cache_dir"), index_path)
    check_index_classes(index_path, index.class_names, run_dir, config)
    if not any(r.split == split for r in index.records):
        raise DataError(f"index {index_path} has no '{split}' images (it has {index.splits()})")
    cached = load_split(index, split, int(config["image_size"]), int(config["channels"]),
                        cache_dir=cache_dir,
                        on_bad_image=on_bad_image or config.get("on_bad_image", "skip"),
                        max_pixels=max_pixels or config.get("max_pixels"), refresh=refresh_cache)
    model = load_run(run_dir)[1]
    if len(cached) == 0:
        raise DataError(f"split {split!r} of {index_path} has no images to predict")
    if task == "regression" and cached.valence_arousal is None:
        raise DataError(f"index {index_path} has no valence/arousal; cannot evaluate regression run {run_dir}")
    outputs = predict_batches(model, cached.images, batch_size, tta, source=run_dir / MODEL)
    plain = predict_batches(model, cached.images, batch_size) if tta != "none" else None
    out_dir = eval_dir(run_dir, split, data)
    arrays: dict[str, Any] = {"paths": np.array(cached.paths, dtype=str)}
    notes: list[str] = []
    groups = split_groups(index, split, cached.paths)
    if task == "classification":
        y_true = np.asarray(cached.label_ids)
        temperature, fitted_for = tta_temperature(run_dir, tta, calibrate)
        calibration = {**calibration_report(y_true, outputs, list(index.class_names), temperature),
                       "temperature_tta": fitted_for, "mismatch": temperature_mismatch(fitted_for, tta, run_dir)}
        outputs = scaled(outputs, temperature)
        plain = None if plain is None else scaled(plain, run_temperature(run_dir, calibrate))
        metrics = classification_metrics(y_true, outputs, list(index.class_names))
        metrics.update(ece=(calibration["calibrated"] or calibration["raw"])["ece"], calibration=calibration)
        if bootstrap:
            metrics["bootstrap"] = bootstrap_intervals(y_true, outputs, list(index.class_names),
                                                       n_resamples=bootstrap, seed=seed, groups=groups)
        if plain is not None:
            without = classification_metrics(y_true, plain, list(index.class_names))
            metrics["without_tta"] = {"accuracy": without["accuracy"], "macro_f1": without["macro_avg"]["f1"],
                                      "roc_auc_macro": without["roc_auc_macro"]}
        arrays.update(y_true=y_true, y_prob=outputs, class_names=np.array(index.class_names, dtype=str))
        write_gallery(out_dir / "gallery.npz", model, cached.images, y_true, outputs)
    else:
        y_true = np.asarray(cached.valence_arousal, dtype=np.float64)
        metrics = regression_metrics(y_true, outputs)
        if bootstrap:
            metrics["bootstrap"] = bootstrap_regression_intervals(y_true, outputs, n_resamples=bootstrap,
                                                                  seed=seed, groups=groups)
        if plain is not None:
            metrics["without_tta"] = {"mean": regression_metrics(y_true, plain)["mean"]}
        arrays.update(y_true=y_true, y_pred=outputs, class_names=np.array(index.class_names, dtype=str),
                      labels=np.asarray(cached.label_ids))
    if missing:
        notes.append(f"classes without images in {index_path}: {missing}")
    if notes:
        metrics["notes"] = [*metrics.get("notes", []), *notes]
    metrics.update(task=task, split=split, tta=tta, index=str(index_path), run=run_dir.resolve().name,
                   arch=config.get("arch"), skipped=len(cached.skipped),
                   inference=measure_inference(model, cached.images, batch_size=32))
    if data is not None:
        _warn_replacing_other_data(out_dir, Path(data))
    with atomic_path(out_dir / "predictions.npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    write_json(out_dir / "metrics.json", metrics)
    return metrics
