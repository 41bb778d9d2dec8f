"""How far a classifier's probabilities can be trusted: calibration errors over equal-width
confidence bins (ECE, MCE, the reliability diagram's data), the multi-class Brier score, the
negative log-likelihood, and temperature scaling (Guo et al. 2017, "On Calibration of Modern
Neural Networks").

Inputs as for :func:`~kerascv_emotion.metrics.classification_metrics`: label ids ``(N,)`` or
one-hot ``(N, K)`` and probabilities ``(N, K)`` (or ``(N, 1)`` / ``(N,)`` for 2 classes). The
confidence of a sample is its largest probability, its prediction the arg-max; bin ``b`` of
``n_bins`` holds the confidences in ``(b / n_bins, (b + 1) / n_bins]`` (a confidence of 0 goes
into the first bin).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from kerascv_emotion.metrics.arrays import MetricInputError, classification_arrays

DEFAULT_BINS = 15
"""Confidence bins of the calibration errors (Guo et al. 2017 use 15)."""
TEMPERATURE_BOUNDS = (0.05, 20.0)
"""The range searched for the temperature."""
MIN_PROBABILITY = 1e-12
"""Probabilities are clipped below at this before a logarithm."""


def _arrays(y_true: Any, y_prob: Any, class_names: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
    """Validated label ids ``(N,)`` and probabilities ``(N, K)``; ``class_names`` default to the ids."""
    if class_names is None:
        shape = np.shape(y_prob)
        class_names = [str(i) for i in range(shape[1] if len(shape) == 2 and shape[1] > 1 else 2)]
    _, y, p = classification_arrays(y_true, y_prob, class_names, from_logits=False)
    return y, p


def confidence_bins(confidence: np.ndarray, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Bin id ``(N,)`` in ``0..n_bins-1`` of each confidence ``(N,)`` in [0, 1]: bin ``b`` holds
    ``(b / n_bins, (b + 1) / n_bins]``, and 0 goes into bin 0."""
    if int(n_bins) < 1:
        raise MetricInputError(f"n_bins {n_bins} must be at least 1 (e.g. {DEFAULT_BINS})")
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    return np.searchsorted(edges[1:-1], np.asarray(confidence, dtype=np.float64), side="left")


def reliability_diagram(y_true: Any, y_prob: Any, n_bins: int = DEFAULT_BINS,
                        class_names: Sequence[str] | None = None) -> dict[str, list[float]]:
    """The reliability diagram's data over ``n_bins`` equal-width confidence bins.

    Returns ``{"edges": (n_bins + 1,), "count": (n_bins,), "confidence": (n_bins,),
    "accuracy": (n_bins,)}`` as lists: the bin edges, the samples per bin, and their mean
    confidence and accuracy (NaN for an empty bin).
    """
    n_bins = int(n_bins)
    y, p = _arrays(y_true, y_prob, class_names)
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    bins = confidence_bins(confidence, n_bins)
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / count
    return {"edges": np.linspace(0.0, 1.0, n_bins + 1).tolist(), "count": count.astype(int).tolist(),
            "confidence": mean_confidence.tolist(), "accuracy": accuracy.tolist()}


def _bin_gaps(diagram: dict[str, list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """``|accuracy - confidence|`` ``(B,)`` of the non-empty bins and their share of the samples ``(B,)``."""
    count = np.asarray(diagram["count"], dtype=np.float64)
    used = count > 0
    gap = np.abs(np.asarray(diagram["accuracy"])[used] - np.asarray(diagram["confidence"])[used])
    return gap, count[used] / count.sum()


def expected_calibration_error(y_true: Any, y_prob: Any, n_bins: int = DEFAULT_BINS,
                               class_names: Sequence[str] | None = None) -> float:
    """ECE: the mean over samples of ``|accuracy - confidence|`` of their confidence bin (0..1)."""
    gap, share = _bin_gaps(reliability_diagram(y_true, y_prob, n_bins, class_names))
    return float(np.sum(gap * share))


def max_calibration_error(y_true: Any, y_prob: Any, n_bins: int = DEFAULT_BINS,
                          class_names: Sequence[str] | None = None) -> float:
    """MCE: the largest ``|accuracy - confidence|`` over the non-empty confidence bins (0..1)."""
    gap, _ = _bin_gaps(reliability_diagram(y_true, y_prob, n_bins, class_names))
    return float(gap.max())


def brier_score(y_true: Any, y_prob: Any, class_names: Sequence[str] | None = None) -> float:
    """Multi-class Brier score: the mean over samples of ``sum_k (p_k - [y = k])^2`` (0..2; for 2
    classes twice scikit-learn's binary ``brier_score_loss``)."""
    y, p = _arrays(y_true, y_prob, class_names)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def negative_log_likelihood(y_true: Any, y_prob: Any, class_names: Sequence[str] | None = None) -> float:
    """Mean ``-log p_y`` in nats (probabilities clipped below at 1e-12)."""
    y, p = _arrays(y_true, y_prob, class_names)
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), y], MIN_PROBABILITY))))


def calibration_metrics(y_true: Any, y_prob: Any, class_names: Sequence[str] | None = None,
                        n_bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """``{"ece", "mce", "brier", "nll", "n_bins", "reliability"}`` (``reliability``: see
    :func:`reliability_diagram`)."""
    diagram = reliability_diagram(y_true, y_prob, n_bins, class_names)
    gap, share = _bin_gaps(diagram)
    return {"ece": float(np.sum(gap * share)), "mce": float(gap.max()),
            "brier": brier_score(y_true, y_prob, class_names),
            "nll": negative_log_likelihood(y_true, y_prob, class_names),
            "n_bins": int(n_bins), "reliability": diagram}


def apply_temperature(y_prob: Any, temperature: float) -> np.ndarray:
    """``softmax(log(p) / T)`` ``(N, K)`` of probabilities ``(N, K)``: ``T > 1`` softens, ``T < 1``
    sharpens, the arg-max of every row is kept."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise MetricInputError(f"temperature {temperature} must be a positive number")
    z = np.log(np.maximum(np.asarray(y_prob, dtype=np.float64), MIN_PROBABILITY)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(y_true: Any, y_prob: Any, class_names: Sequence[str] | None = None,
                    bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """The temperature ``T`` in ``bounds`` minimising the negative log-likelihood of
    :func:`apply_temperature` ``(y_prob, T)`` (bounded scalar search over ``log T``)."""
    from scipy.optimize import minimize_scalar

    y, p = _arrays(y_true, y_prob, class_names)

    def nll(log_t: float) -> float:
        return negative_log_likelihood(y, apply_temperature(p, math.exp(log_t)))

    found = minimize_scalar(nll, bounds=(math.log(bounds[0]), math.log(bounds[1])), method="bounded",
                            options={"xatol": 1e-5})
    return float(math.exp(found.x))
