"""Arrays in and out of the metric functions: validation of label ids, class probabilities
and regression targets (bad ones raise :class:`MetricInputError`), and the NaN-skipping
average that summarises per-class or per-dimension values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from kerascv_emotion.errors import ConfigError

PROBABILITY_SUM_TOLERANCE = 1e-3  # how far a probability row may sum from 1 (float16/float32 softmax)


class MetricInputError(ConfigError, ValueError):
    """Arrays given to a metric function have a bad shape, value or label."""


def _check_class_names(class_names: Sequence[str]) -> list[str]:
    names = [str(c) for c in class_names]
    if len(names) < 2:
        raise MetricInputError(
            f"class_names {names} has fewer than 2 classes; a classifier needs at least 2"
        )
    if len(set(names)) != len(names):
        raise MetricInputError(f"class_names {names} has duplicates; give each class once")
    return names


def _labels(y_true: Any, k: int) -> np.ndarray:
    """Integer ids ``(N,)`` in ``[0, k)`` from ids ``(N,)``/``(N, 1)`` or one-hot ``(N, k)``."""
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == k and k > 1:
        if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)):
            raise MetricInputError("y_true (one-hot) holds NaN or non-numeric values; fix the labels")
        return np.argmax(y, axis=1).astype(np.int64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise MetricInputError(
            f"y_true has shape {y.shape}; give label ids (N,) or one-hot (N, {k})"
        )
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise MetricInputError("y_true has non-integer or NaN label ids; give ids 0..K-1")
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iub":
        raise MetricInputError(f"y_true has dtype {y.dtype}; give integer label ids or one-hot rows")
    y = y.astype(np.int64)
    bad = (y < 0) | (y >= k)
    if bad.any():
        raise MetricInputError(
            f"y_true has label id {int(y[bad][0])} outside the {k} classes (ids 0..{k - 1}); "
            "check class_names against the labels"
        )
    return y


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _probabilities(y_prob: Any, k: int, n: int, from_logits: bool) -> np.ndarray:
    """Validated class probabilities ``(N, k)`` float64, rows summing to 1."""
    p = np.asarray(y_prob, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[0] != n:
        raise MetricInputError(f"y_prob has shape {p.shape}; expected ({n}, {k}) to match y_true")
    if not np.all(np.isfinite(p)):
        raise MetricInputError("y_prob holds NaN or infinite values; the model's predictions diverged")
    if p.shape[1] == 1 and k == 2:
        pos = 1.0 / (1.0 + np.exp(-p[:, 0])) if from_logits else p[:, 0]
        p = np.stack([1.0 - pos, pos], axis=1)
    elif p.shape[1] != k:
        raise MetricInputError(f"y_prob has {p.shape[1]} columns but there are {k} classes")
    elif from_logits:
        p = _softmax(p)
    problem = probability_rows_problem(p)
    if problem is not None:
        raise MetricInputError(
            f"y_prob has {problem}: these look like logits or multi-label scores; "
            "pass from_logits=True or add a softmax/sigmoid"
        )
    return p / p.sum(axis=1, keepdims=True)


def probability_rows_problem(p: np.ndarray) -> str | None:
    """What keeps ``p`` ``(N, K)`` from being rows of class probabilities, as a noun phrase
    ("values outside [0, 1]"); ``None`` when each row is finite, within [0, 1] and sums to 1
    within :data:`PROBABILITY_SUM_TOLERANCE`."""
    if not np.all(np.isfinite(p)):
        return "NaN or infinite values"
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        return "values outside [0, 1]"
    sums = p.sum(axis=1)
    if np.any(np.abs(sums - 1.0) > PROBABILITY_SUM_TOLERANCE):
        return f"rows that do not sum to 1 (e.g. {float(sums[np.argmax(np.abs(sums - 1.0))]):.4f})"
    return None


def classification_arrays(y_true: Any, y_prob: Any, class_names: Sequence[str],
                          from_logits: bool) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Validated class names (K), label ids ``(N,)`` int64 and probabilities ``(N, K)`` float64."""
    names = _check_class_names(class_names)
    y = _labels(y_true, len(names))
    if y.size == 0:
        raise MetricInputError("y_true is empty; metrics need at least one sample")
    return names, y, _probabilities(y_prob, len(names), len(y), from_logits)


def regression_arrays(y_true: Any, y_pred: Any,
                      names: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Validated ``(N, D)`` float64 targets and predictions and their D names."""
    names = [str(d) for d in names]
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.ndim == 1:
        t = t[:, None]
    if p.ndim == 1:
        p = p[:, None]
    if t.ndim != 2 or t.shape != p.shape:
        raise MetricInputError(f"y_true {t.shape} and y_pred {p.shape} must both be (N, D) with the same shape")
    if t.shape[1] != len(names):
        raise MetricInputError(f"got {t.shape[1]} output dimensions but names {names}; give one name per column")
    if t.shape[0] == 0:
        raise MetricInputError("y_true is empty; metrics need at least one sample")
    if not np.all(np.isfinite(t)):
        raise MetricInputError("y_true holds NaN or infinite values; fix the annotations")
    if not np.all(np.isfinite(p)):
        raise MetricInputError("y_pred holds NaN or infinite values; the model's predictions diverged")
    return names, t, p


def nan_average(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean (weighted by ``weights``) over the finite ``values``; NaN if there are none."""
    ok = np.isfinite(values)
    if weights is not None:
        ok &= weights > 0
    if not ok.any():
        return math.nan
    return float(np.average(values[ok], weights=None if weights is None else weights[ok]))
