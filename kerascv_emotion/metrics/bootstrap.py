"""Seeded percentile bootstrap confidence intervals for the classification and regression
metrics, resampling single samples or whole groups (e.g. subjects); ECE's interval is shifted
down by its resampling bias (:func:`_interval`).

Every resample is a row of sample counts ``(N,)``; the measures are computed for a block of
such rows at once (matrix products and weighted sums), not by copying resampled arrays.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from kerascv_emotion.metrics.arrays import (
    MetricInputError,
    classification_arrays,
    nan_average,
    regression_arrays,
)
from kerascv_emotion.metrics.calibration import DEFAULT_BINS, confidence_bins
from kerascv_emotion.metrics.regression import CONSTANT_VARIANCE
from kerascv_emotion.tasks import REGRESSION_MEASURES, REGRESSION_NAMES

_BOOTSTRAP_CELLS = 4_000_000  # resample-by-sample cells processed at once (memory bound)

Measures = Callable[[np.ndarray], dict[str, np.ndarray]]
"""Sample counts ``(R, N)`` -> each measure ``(R,)`` or ``(R, K)`` under every row."""


def _check_bootstrap_settings(n_resamples: int, confidence: float) -> None:
    if int(n_resamples) < 1:
        raise MetricInputError(f"n_resamples {n_resamples} must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise MetricInputError(f"confidence {confidence} must lie strictly between 0 and 1 (e.g. 0.95)")


def _group_codes(groups: Any, n: int) -> np.ndarray | None:
    """``groups`` ``(N,)`` (e.g. subject ids) as int codes ``0..G-1``; ``None`` passes through."""
    if groups is None:
        return None
    values = np.asarray(groups)
    if values.shape != (n,):
        raise MetricInputError(f"groups has shape {values.shape}; give one group per sample, shape ({n},)")
    return np.unique(values, return_inverse=True)[1].reshape(n)


def _resample_counts(rng: np.random.Generator, n: int, n_resamples: int,
                     group_codes: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Yield blocks ``(R_block, n)`` of how often each sample is drawn in each resample.

    With ``group_codes`` ``(N,)`` (ints ``0..G-1``) whole groups are drawn with replacement (a
    cluster bootstrap: samples of one subject are not independent) and each sample counts as
    often as its group; with every sample its own group this is the plain bootstrap, draw for draw.
    """
    units = n if group_codes is None else int(group_codes.max()) + 1
    block = max(1, _BOOTSTRAP_CELLS // n)
    done = 0
    while done < n_resamples:
        r = min(block, n_resamples - done)
        idx = rng.integers(0, units, size=(r, units)) + units * np.arange(r)[:, None]
        counts = np.bincount(idx.ravel(), minlength=r * units).reshape(r, units).astype(np.float64)
        yield counts if group_codes is None else counts[:, group_codes]
        done += r


def _bootstrap(measures: Measures, n: int, n_resamples: int, seed: int, confidence: float,
               groups: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """``measures`` on the full sample (each ``(1, ...)``) and over ``n_resamples`` seeded
    resamples (each ``(R, ...)``), and the settings that go into the returned JSON."""
    codes = _group_codes(groups, n)
    full = measures(np.ones((1, n)))
    rng = np.random.default_rng(seed)
    parts = [measures(counts) for counts in _resample_counts(rng, n, int(n_resamples), codes)]
    samples = {key: np.concatenate([part[key] for part in parts]) for key in full}
    settings = {"n_resamples": int(n_resamples), "confidence": float(confidence), "seed": int(seed),
                "groups": None if codes is None else int(codes.max()) + 1}
    return full, samples, settings


def weighted_roc_auc(counts: np.ndarray, positive: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC of ``score`` ``(N,)`` for the boolean ``positive`` ``(N,)`` under each row of
    sample ``counts`` ``(R, N)`` at once -> ``(R,)``; NaN where a row has no positives or
    no negatives. Equals ``sklearn.metrics.roc_auc_score(..., sample_weight=row)`` (ties
    count one half), computed as the Mann-Whitney statistic over tied score groups.
    """
    order = np.argsort(score, kind="stable")
    ranked = score[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    w = counts[:, order]
    pos = positive[order]
    p_group = np.add.reduceat(w * pos, starts, axis=1)
    q_group = np.add.reduceat(w * ~pos, starts, axis=1)
    below = np.cumsum(q_group, axis=1) - q_group
    numerator = np.sum(p_group * (below + 0.5 * q_group), axis=1)
    denominator = p_group.sum(axis=1) * q_group.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _interval(estimate: float, samples: np.ndarray, confidence: float, debias: bool = False) -> dict[str, Any]:
    """Percentile interval of the finite ``samples``; ``skipped`` counts the undefined ones.

    ``debias``: for a measure the resampling itself inflates (ECE sums absolute bin gaps, so
    sampling noise only adds to it), shift the interval down by the bootstrap's bias estimate
    ``mean(samples) - estimate`` (recorded as ``bias``) and clip it at 0; without this the
    percentile interval of a well-calibrated model can lie wholly above its own estimate. The
    shifted interval is the plug-in estimate's spread around itself, not an interval for the
    true ECE, which the plug-in overestimates by about ``bias``."""
    ok = np.isfinite(samples)
    bias = 0.0
    if ok.any():
        tail = 100.0 * (1.0 - confidence) / 2.0
        low, high = np.percentile(samples[ok], [tail, 100.0 - tail])
        if debias:
            bias = float(samples[ok].mean() - estimate)
            low, high = max(low - bias, 0.0), max(high - bias, 0.0)
    else:
        low = high = math.nan
    entry = {"estimate": float(estimate), "low": float(low), "high": float(high), "skipped": int((~ok).sum())}
    return {**entry, "bias": bias} if debias else entry


def bootstrap_intervals(y_true: Any, y_prob: Any, class_names: Sequence[str],
                        n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95, *,
                        from_logits: bool = False, groups: Any = None,
                        n_bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Seeded percentile bootstrap intervals for accuracy, macro F1, the expected calibration
    error (over ``n_bins`` confidence bins), per-class recall and per-class ROC AUC (same inputs
    as :func:`~kerascv_emotion.metrics.classification_metrics`). The ECE interval is shifted down
    by the resampling's own upward bias, ``bias`` = mean resampled ECE - estimate, and clipped at 0.

    ``groups`` ``(N,)``: resample whole groups (e.g. the subjects of CK+, whose frames are not
    independent) instead of single samples.

    Returns ``{"accuracy": {estimate, low, high, skipped}, "macro_f1": {...}, "ece": {...},
    "recall": {class: {...}}, "roc_auc": {class: {...}}, "n_resamples", "confidence", "seed",
    "groups"}`` (``groups``: how many groups were resampled, ``None`` for samples);
    ``estimate`` is the full-sample value, ``skipped`` the resamples where the metric was
    undefined (class absent, or no negatives for AUC), left out of the interval.
    Macro F1 counts every class (F1 = 0 for a class neither present nor predicted).
    """
    _check_bootstrap_settings(n_resamples, confidence)
    names, y, p = classification_arrays(y_true, y_prob, class_names, from_logits)
    k, n = len(names), len(y)
    pred = np.argmax(p, axis=1)
    cell = np.zeros((n, k * k))
    cell[np.arange(n), y * k + pred] = 1.0
    positives = [y == i for i in range(k)]
    top = p.max(axis=1)
    gaps = np.zeros((n, int(n_bins)))  # (correct - confidence) of each sample, in its bin's column
    gaps[np.arange(n), confidence_bins(top, n_bins)] = (pred == y) - top

    def measures(counts: np.ndarray) -> dict[str, np.ndarray]:
        """Accuracy, macro F1, ECE (R,), recall and ROC AUC (R, K) under ``counts`` (R, N)."""
        cm = (counts @ cell).reshape(-1, k, k)
        tp = np.diagonal(cm, axis1=1, axis2=2)
        support, predicted = cm.sum(axis=2), cm.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(support > 0, tp / support, np.nan)
            f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
        auc = np.stack([weighted_roc_auc(counts, positives[i], p[:, i]) for i in range(k)], axis=1)
        return {"accuracy": tp.sum(axis=1) / cm.sum(axis=(1, 2)), "macro_f1": f1.mean(axis=1),
                "ece": np.abs(counts @ gaps).sum(axis=1) / counts.sum(axis=1), "recall": recall, "roc_auc": auc}

    full, samples, settings = _bootstrap(measures, n, n_resamples, seed, confidence, groups)
    return {
        "accuracy": _interval(full["accuracy"][0], samples["accuracy"], confidence),
        "macro_f1": _interval(full["macro_f1"][0], samples["macro_f1"], confidence),
        "ece": _interval(full["ece"][0], samples["ece"], confidence, debias=True),
        "recall": {name: _interval(full["recall"][0, i], samples["recall"][:, i], confidence)
                   for i, name in enumerate(names)},
        "roc_auc": {name: _interval(full["roc_auc"][0, i], samples["roc_auc"][:, i], confidence)
                    for i, name in enumerate(names)},
        **settings,
    }


def bootstrap_regression_intervals(y_true: Any, y_pred: Any,
                                   names: Sequence[str] = REGRESSION_NAMES,
                                   n_resamples: int = 1000, seed: int = 0,
                                   confidence: float = 0.95, *, groups: Any = None) -> dict[str, Any]:
    """Seeded percentile bootstrap intervals for every measure of
    :func:`~kerascv_emotion.metrics.regression_metrics` (RMSE, CORR, SAGR, CCC) per dimension
    and their means (same inputs; ``groups`` as in :func:`bootstrap_intervals`).

    Returns ``{"rmse": {dim: {estimate, low, high, skipped}}, "corr": {...}, "sagr": {...},
    "ccc": {...}, "rmse_mean": {estimate, low, high, skipped}, "corr_mean": ..., "sagr_mean": ...,
    "ccc_mean": ..., "n_resamples", "confidence", "seed", "groups"}``; means skip undefined
    dimensions as ``regression_metrics`` does, and a correlation is undefined where it is there.
    """
    _check_bootstrap_settings(n_resamples, confidence)
    names, t, p = regression_arrays(y_true, y_pred, names)
    n, dims = t.shape
    agree = (np.sign(t) == np.sign(p)).astype(np.float64)
    shift = t.mean(axis=0)  # the measures are invariant to a common shift; centring avoids cancellation
    t, p = t - shift, p - shift
    columns = np.concatenate([t, p, t * t, p * p, t * p, (t - p) ** 2, agree], axis=1)  # (N, 7D)

    def measures(counts: np.ndarray) -> dict[str, np.ndarray]:
        """Each measure ``(R, D)`` under sample ``counts`` ``(R, N)``."""
        m = (counts @ columns / counts.sum(axis=1, keepdims=True)).reshape(-1, 7, dims)
        mt, mp, tt, pp, tp, se, sagr = (m[:, j] for j in range(7))
        var_t, var_p, cov = tt - mt**2, pp - mp**2, tp - mt * mp
        den = var_t + var_p + (mt - mp) ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            ccc = np.where(den > 0, 2.0 * cov / den, np.nan)
            corr = np.where((var_t > CONSTANT_VARIANCE) & (var_p > CONSTANT_VARIANCE),
                            cov / np.sqrt(var_t * var_p), np.nan)
        return {"rmse": np.sqrt(se), "corr": corr, "sagr": sagr, "ccc": ccc}

    full, samples, settings = _bootstrap(measures, n, n_resamples, seed, confidence, groups)
    out: dict[str, Any] = {}
    for key in REGRESSION_MEASURES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows -> NaN mean, counted as skipped
            mean_samples = np.nanmean(samples[key], axis=1)
        out[key] = {name: _interval(full[key][0, d], samples[key][:, d], confidence) for d, name in enumerate(names)}
        out[f"{key}_mean"] = _interval(nan_average(full[key][0]), mean_samples, confidence)
    return out | settings
