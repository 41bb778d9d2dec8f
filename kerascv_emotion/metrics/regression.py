"""Valence/arousal regression metrics: RMSE, Pearson correlation (CORR), sign agreement
(SAGR) and concordance correlation (CCC) per output dimension and their means."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from kerascv_emotion.metrics.arrays import nan_average, regression_arrays
from kerascv_emotion.tasks import REGRESSION_MEASURES, REGRESSION_NAMES

CONSTANT_VARIANCE = 1e-12  # a series with a smaller variance (squared target units) is constant: corr undefined


def concordance_correlation(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Lin's concordance correlation coefficient of two ``(N,)`` series (population moments).

    ``2 cov(t, p) / (var(t) + var(p) + (mean(t) - mean(p))**2)``; NaN when the
    denominator is 0 (both series constant and equal).
    """
    mt, mp = float(np.mean(y_true)), float(np.mean(y_pred))
    cov = float(np.mean((y_true - mt) * (y_pred - mp)))
    den = float(np.var(y_true)) + float(np.var(y_pred)) + (mt - mp) ** 2
    return 2.0 * cov / den if den > 0 else math.nan


def sign_agreement(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """SAGR: fraction of samples whose prediction has the target's sign (0 counts as its own sign)."""
    return float(np.mean(np.sign(y_true) == np.sign(y_pred)))


def regression_metrics(y_true: Any, y_pred: Any,
                       names: Sequence[str] = REGRESSION_NAMES) -> dict[str, Any]:
    """RMSE, Pearson correlation (``corr``), sign agreement (``sagr``) and concordance
    correlation (``ccc``) per output dimension and their means.

    ``y_true``, ``y_pred``: ``(N, D)`` (or ``(N,)`` for D = 1) in the targets' units
    (valence/arousal in [-1, 1]); ``names``: the D dimension names.
    Returns ``{"per_dim": {name: {rmse, corr, sagr, ccc}}, "mean": {...}, "names", "n", "notes"}``;
    ``corr`` is NaN where targets or predictions are constant (variance under 1e-12, which
    absorbs the rounding of a constant's mean); the means skip undefined (NaN) values.
    """
    names, t, p = regression_arrays(y_true, y_pred, names)
    notes: list[str] = []
    rmse = skm.root_mean_squared_error(t, p, multioutput="raw_values")
    per_dim: dict[str, dict[str, float]] = {}
    for d, name in enumerate(names):
        if np.var(t[:, d]) > CONSTANT_VARIANCE and np.var(p[:, d]) > CONSTANT_VARIANCE:
            corr = float(np.corrcoef(t[:, d], p[:, d])[0, 1])
        else:
            corr = math.nan
            notes.append(f"corr for '{name}' undefined: targets or predictions are constant")
        ccc = concordance_correlation(t[:, d], p[:, d])
        if math.isnan(ccc):
            notes.append(f"ccc for '{name}' undefined: targets and predictions are one constant")
        per_dim[name] = {"rmse": float(rmse[d]), "corr": corr,
                         "sagr": sign_agreement(t[:, d], p[:, d]), "ccc": ccc}
    mean = {key: nan_average(np.array([per_dim[name][key] for name in names])) for key in REGRESSION_MEASURES}
    return {"n": int(len(t)), "names": names, "per_dim": per_dim, "mean": mean, "notes": notes}
