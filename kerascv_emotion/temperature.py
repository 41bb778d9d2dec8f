"""Temperature scaling of a classification run (Guo et al. 2017): one scalar ``T`` fitted on the
validation split after ``train`` and ``tune`` by minimising the negative log-likelihood
(:func:`~kerascv_emotion.metrics.fit_temperature`), stored in ``RUN/calibration.json`` and
applied as ``softmax(log(p) / T)`` by ``evaluate``, ``predict`` and ``export`` (the exported
file includes it) unless they are told ``calibrate=False`` (``--no-calibration``). The arg-max,
so the accuracy, is unchanged. Test-time augmentation averages softer probabilities than one
pass gives, so each TTA mode gets its own ``T``, fitted beside the plain one; ``evaluate --tta``
applies it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from kerascv_emotion.errors import DataError
from kerascv_emotion.inference import TTA_MODES, predict_batches
from kerascv_emotion.io import read_json, write_json
from kerascv_emotion.runs import (
    CALIBRATION,
    MODEL,
    load_model,
    load_run,
    load_run_split,
    read_config,
)

log = logging.getLogger(__name__)


def _fit(y: np.ndarray, raw: np.ndarray) -> dict[str, Any]:
    """``{"temperature", "raw": {"nll", "ece"}, "calibrated": {"nll", "ece"}}`` of ``T`` fitted on
    probabilities ``raw`` ``(N, K)`` against label ids ``y`` ``(N,)``."""
    from kerascv_emotion.metrics import (
        apply_temperature,
        expected_calibration_error,
        fit_temperature,
        negative_log_likelihood,
    )

    temperature = fit_temperature(y, raw)
    return {"temperature": temperature,
            **{name: {"nll": negative_log_likelihood(y, p), "ece": expected_calibration_error(y, p)}
               for name, p in (("raw", raw), ("calibrated", apply_temperature(raw, temperature)))}}


def fit_run_temperature(run_dir: str | os.PathLike, val: Any, batch_size: int = 64) -> dict[str, Any]:
    """Fit ``T`` for ``RUN/model.keras`` on ``val`` (the run's validation
    :class:`~kerascv_emotion.data.cache.CachedSplit`, predicted ``batch_size`` images per call),
    once for the plain outputs and once per test-time augmentation (TTA-averaged probabilities
    are softer than one pass's, so they need their own ``T``), and write ``RUN/calibration.json``:
    ``{"temperature", "split": "val", "images", "n_bins", "raw": {"nll", "ece"},
    "calibrated": {"nll", "ece"}, "tta": {mode: {"temperature", "raw", "calibrated"}}}``;
    returns it."""
    from kerascv_emotion.metrics import DEFAULT_BINS

    run_dir = Path(run_dir)
    y = np.asarray(val.label_ids)
    model = load_model(run_dir / MODEL)
    fits = {mode: _fit(y, predict_batches(model, val.images, batch_size, mode)) for mode in TTA_MODES}
    plain = fits.pop("none")
    record = {**plain, "split": "val", "images": int(len(y)), "n_bins": DEFAULT_BINS, "tta": fits}
    write_json(run_dir / CALIBRATION, record)
    log.info("temperature %.3f: val NLL %.4f -> %.4f; with TTA %s", plain["temperature"], plain["raw"]["nll"],
             plain["calibrated"]["nll"], ", ".join(f"{mode} {fit['temperature']:.3f}" for mode, fit in fits.items()))
    return record


def calibrate_run(run_dir: str | os.PathLike, batch_size: int = 64) -> dict[str, Any]:
    """:func:`fit_run_temperature` on the validation split of the run's own index (for a run
    trained before calibration existed, or to refit); returns ``calibration.json``'s content."""
    config = read_config(run_dir)
    if config.get("task", "classification") != "classification":
        raise DataError(f"{run_dir} is a {config['task']} run; temperature scaling is for classification runs")
    return fit_run_temperature(run_dir, load_run_split(config, "val"), batch_size)


def _checked(path: Path, temperature: Any) -> float:
    """``temperature`` as a float, or :class:`DataError` naming ``path`` unless positive and finite."""
    try:
        value = float(temperature)
    except (ValueError, TypeError):
        value = float("nan")
    if not (np.isfinite(value) and value > 0):
        raise DataError(f"{path} has temperature {temperature}; it must be positive: delete the file, "
                        "or use --no-calibration")
    return value


def tta_temperature(run_dir: str | os.PathLike, tta: str = "none",
                    calibrate: bool = True) -> tuple[float | None, str | None]:
    """The temperature in ``RUN/calibration.json`` for outputs averaged by ``tta``, and the TTA
    mode it was fitted for: ``tta`` itself, or ``"none"`` for a file written before per-TTA
    temperatures existed (the caller says so, in the words of
    :func:`kerascv_emotion.runs.temperature_mismatch`).
    ``(None, None)`` when ``calibrate`` is off or the run has none (a regression run, or one
    trained before calibration existed)."""
    path = Path(run_dir) / CALIBRATION
    if not calibrate or not path.is_file():
        return None, None
    try:
        record = read_json(path)
        plain = record["temperature"]
        fitted = record.get("tta", {}).get(tta) if tta != "none" else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise DataError(f"{path} is unreadable or has no 'temperature'; delete it, or use --no-calibration") from None
    if fitted is None:
        return _checked(path, plain), "none"
    try:
        return _checked(path, fitted["temperature"]), tta
    except (KeyError, TypeError):
        raise DataError(f"{path} has no temperature for tta={tta}; delete it, or use --no-calibration") from None


def run_temperature(run_dir: str | os.PathLike, calibrate: bool = True) -> float | None:
    """The temperature in ``RUN/calibration.json`` for one pass's outputs (:func:`tta_temperature`
    without TTA); ``None`` when ``calibrate`` is off or the run has none."""
    return tta_temperature(run_dir, "none", calibrate)[0]


def calibrated_model(model: Any, temperature: float | None) -> Any:
    """``model`` followed by ``softmax(log(max(p, 1e-12)) / temperature)`` as one functional Keras
    model (same input; output ``(N, K)``); ``model`` itself when ``temperature`` is ``None``."""
    if temperature is None:
        return model
    import keras

    from kerascv_emotion.metrics.calibration import MIN_PROBABILITY

    inputs = keras.Input(shape=model.input_shape[1:], name="image")
    log_p = keras.ops.log(keras.ops.maximum(model(inputs), MIN_PROBABILITY))
    outputs = keras.ops.softmax(log_p / np.float32(temperature), axis=-1)
    return keras.Model(inputs, outputs, name=f"{model.name}_calibrated")


def load_run_model(run_dir: str | os.PathLike, calibrate: bool = True) -> tuple[dict[str, Any], Any, float | None]:
    """The run's ``config.json`` and ``model.keras`` (:func:`~kerascv_emotion.runs.load_run`), the
    model with the run's temperature applied (:func:`calibrated_model`), and the temperature
    (``None``: none applied)."""
    config, model = load_run(run_dir)
    temperature = run_temperature(run_dir, calibrate)
    return config, calibrated_model(model, temperature), temperature
