"""Evaluation metrics: pure functions over NumPy arrays, scikit-learn underneath.

Classification (:func:`classification_metrics`) and valence/arousal regression
(:func:`regression_metrics`) return the "Metrics JSON" dicts of ``docs/architecture.md``
(``kerascv_emotion.reporting.tables`` lays them out as tables); :func:`bootstrap_intervals` and
:func:`bootstrap_regression_intervals` give seeded percentile confidence intervals.

Conventions:

* ``y_true`` is integer label ids ``(N,)`` or one-hot ``(N, K)``; ``y_prob`` is class
  probabilities ``(N, K)`` (rows sum to 1), or ``(N, 1)`` / ``(N,)`` sigmoid outputs
  (probability of the second class) when there are 2 classes. Logits raise
  :class:`MetricInputError` unless ``from_logits=True`` (softmax, or sigmoid for one column).
* Predicted class = arg-max of the probabilities.
* Precision, recall and F1 follow scikit-learn's ``zero_division`` convention (default 0
  when a denominator is 0, as in ``classification_report``); other undefined numbers
  (AUCs for a class absent from ``y_true``, specificity when every sample is of the class,
  correlations of constant series) are NaN, each with a line in ``notes`` saying why.
* Every number is a Python ``float`` (counts are ``int``), so the dict is JSON-ready
  through :func:`kerascv_emotion.io.write_json` (NaN -> ``null``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from kerascv_emotion.errors import ConfigError
from kerascv_emotion.tasks import REGRESSION_MEASURES, REGRESSION_NAMES

_SUM_TOLERANCE = 1e-3  # how far a probability row may sum from 1 (float16/float32 softmax)
_BOOTSTRAP_CELLS = 4_000_000  # resample-by-sample cells processed at once (memory bound)
_CONSTANT_VARIANCE = 1e-12  # a series with a smaller variance (squared target units) is constant: corr undefined


class MetricInputError(ConfigError, ValueError):
    """Arrays given to a metric function have a bad shape, value or label."""


# ----------------------------------------------------------------------------- inputs


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
    if p.min() < 0.0 or p.max() > 1.0:
        raise MetricInputError(
            "y_prob has values outside [0, 1]: these look like logits; "
            "pass from_logits=True or add a softmax/sigmoid"
        )
    sums = p.sum(axis=1)
    if np.any(np.abs(sums - 1.0) > _SUM_TOLERANCE):
        raise MetricInputError(
            f"y_prob rows do not sum to 1 (e.g. {float(sums[np.argmax(np.abs(sums - 1.0))]):.4f}): "
            "these look like logits or multi-label scores; pass from_logits=True or add a softmax"
        )
    return p / sums[:, None]


def _checked_inputs(y_true: Any, y_prob: Any, class_names: Sequence[str],
                    from_logits: bool) -> tuple[list[str], np.ndarray, np.ndarray]:
    names = _check_class_names(class_names)
    y = _labels(y_true, len(names))
    if y.size == 0:
        raise MetricInputError("y_true is empty; metrics need at least one sample")
    return names, y, _probabilities(y_prob, len(names), len(y), from_logits)


# ---------------------------------------------------------------------- classification


def _nan_average(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean (weighted by ``weights``) over the finite ``values``; NaN if there are none."""
    ok = np.isfinite(values)
    if weights is not None:
        ok &= weights > 0
    if not ok.any():
        return math.nan
    return float(np.average(values[ok], weights=None if weights is None else weights[ok]))


def _binary_at_threshold(y: np.ndarray, p: np.ndarray, names: list[str],
                         positive_class: str | int | None, threshold: float,
                         notes: list[str]) -> dict[str, Any]:
    """Sensitivity and specificity of ``p[:, pos] >= threshold`` against ``y == pos``."""
    if positive_class is None:
        pos = 1
    elif isinstance(positive_class, str):
        if positive_class not in names:
            raise MetricInputError(f"positive_class {positive_class!r} is not one of {names}")
        pos = names.index(positive_class)
    else:
        pos = int(positive_class)
        if pos not in (0, 1):
            raise MetricInputError(f"positive_class id {pos} must be 0 or 1 for a binary task")
    if not 0.0 <= threshold <= 1.0:
        raise MetricInputError(f"threshold {threshold} must lie in [0, 1]")
    truth = y == pos
    called = p[:, pos] >= threshold
    tn, fp, fn, tp = (int(v) for v in skm.confusion_matrix(truth, called, labels=[False, True]).ravel())
    sensitivity = tp / (tp + fn) if tp + fn else math.nan
    specificity = tn / (tn + fp) if tn + fp else math.nan
    if tp + fn == 0:
        notes.append(f"sensitivity at threshold undefined: no '{names[pos]}' samples in y_true")
    if tn + fp == 0:
        notes.append(f"specificity at threshold undefined: only '{names[pos]}' samples in y_true")
    return {"positive_class": names[pos], "threshold": float(threshold),
            "sensitivity": float(sensitivity), "specificity": float(specificity),
            "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def classification_metrics(y_true: Any, y_prob: Any, class_names: Sequence[str], *,
                           from_logits: bool = False, threshold: float = 0.5,
                           positive_class: str | int | None = None,
                           zero_division: float = 0.0) -> dict[str, Any]:
    """Metrics of a K-class classifier (the "Metrics JSON" layout).

    ``y_true``: label ids ``(N,)`` or one-hot ``(N, K)``; ``y_prob``: probabilities ``(N, K)``,
    or ``(N, 1)`` sigmoid outputs for K = 2 (``from_logits=True`` applies softmax/sigmoid first).
    Returns ``accuracy``, ``balanced_accuracy``, ``cohen_kappa``, ``log_loss`` (nats),
    ``per_class`` {name: precision, recall, f1, specificity, support, roc_auc,
    average_precision}, ``macro_avg`` / ``weighted_avg`` (same keys; weights = support),
    ``roc_auc_micro``, ``roc_auc_macro`` (mean over classes whose AUC is defined),
    ``confusion_matrix`` (true rows, predicted columns), ``class_names``, ``n``, ``notes``;
    for K = 2 also ``binary``: sensitivity/specificity of ``P(positive) >= threshold``
    (positive class: ``positive_class`` name or id, default the second class).
    ``zero_division`` is scikit-learn's value for precision/recall/F1 with a zero denominator.
    """
    names, y, p = _checked_inputs(y_true, y_prob, class_names, from_logits)
    k, n = len(names), len(y)
    if positive_class is not None and k != 2:
        raise MetricInputError(f"positive_class is only for 2 classes; there are {k}")
    labels = np.arange(k)
    pred = np.argmax(p, axis=1)
    notes: list[str] = []

    cm = skm.confusion_matrix(y, pred, labels=labels)
    support = cm.sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ill-defined precision/recall: reported in notes
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            y, pred, labels=labels, zero_division=zero_division)
        averages = {
            avg: skm.precision_recall_fscore_support(y, pred, labels=labels, average=avg,
                                                     zero_division=zero_division)[:3]
            for avg in ("macro", "weighted")
        }
        balanced = float(skm.balanced_accuracy_score(y, pred))
        kappa = float(skm.cohen_kappa_score(y, pred, labels=labels))
    predicted = cm.sum(axis=0)
    for i, name in enumerate(names):
        if support[i] == 0:
            notes.append(f"recall for '{name}' undefined: class absent from y_true "
                         f"(set to {zero_division})")
        if predicted[i] == 0:
            notes.append(f"precision for '{name}' undefined: class never predicted "
                         f"(set to {zero_division})")
    if math.isnan(kappa):
        notes.append("cohen_kappa undefined: y_true and predictions are one and the same class")

    negatives = n - support
    true_negatives = n - support - predicted + np.diag(cm)
    specificity = np.where(negatives > 0, true_negatives / np.maximum(negatives, 1), np.nan)

    roc_auc = np.full(k, np.nan)
    average_precision = np.full(k, np.nan)
    onehot = (y[:, None] == labels[None, :]).astype(np.int64)
    for i, name in enumerate(names):
        if support[i] == 0:
            notes.append(f"roc_auc and average_precision for '{name}' undefined: class absent from y_true")
        elif negatives[i] == 0:
            notes.append(f"roc_auc and specificity for '{name}' undefined: "
                         f"every sample in y_true is '{name}'")
            average_precision[i] = skm.average_precision_score(onehot[:, i], p[:, i])
        else:
            roc_auc[i] = skm.roc_auc_score(onehot[:, i], p[:, i])
            average_precision[i] = skm.average_precision_score(onehot[:, i], p[:, i])
    defined_auc = int(np.isfinite(roc_auc).sum())
    if 0 < defined_auc < k:
        notes.append(f"roc_auc_macro averages the {defined_auc} of {k} classes whose AUC is defined")
    roc_auc_micro = float(skm.roc_auc_score(onehot, p, average="micro"))

    per_class = {
        name: {
            "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
            "specificity": float(specificity[i]), "support": int(support[i]),
            "roc_auc": float(roc_auc[i]), "average_precision": float(average_precision[i]),
        }
        for i, name in enumerate(names)
    }
    summaries: dict[str, dict[str, Any]] = {}
    for avg, weights in (("macro", None), ("weighted", support.astype(np.float64))):
        prec, rec, f_score = averages[avg]
        summaries[avg] = {
            "precision": float(prec), "recall": float(rec), "f1": float(f_score),
            "specificity": _nan_average(specificity, weights),
            "roc_auc": _nan_average(roc_auc, weights),
            "average_precision": _nan_average(average_precision, weights),
            "support": int(n),
        }
    out: dict[str, Any] = {
        "n": int(n),
        "class_names": names,
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": balanced,
        "cohen_kappa": kappa,
        "log_loss": float(skm.log_loss(y, p, labels=labels)),
        "per_class": per_class,
        "macro_avg": summaries["macro"],
        "weighted_avg": summaries["weighted"],
        "roc_auc_micro": roc_auc_micro,
        "roc_auc_macro": summaries["macro"]["roc_auc"],
        "confusion_matrix": cm.astype(int).tolist(),
    }
    if k == 2:
        out["binary"] = _binary_at_threshold(y, p, names, positive_class, threshold, notes)
    out["notes"] = notes
    return out


# -------------------------------------------------------------------------- regression


def _regression_arrays(y_true: Any, y_pred: Any,
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
    names, t, p = _regression_arrays(y_true, y_pred, names)
    notes: list[str] = []
    rmse = skm.root_mean_squared_error(t, p, multioutput="raw_values")
    per_dim: dict[str, dict[str, float]] = {}
    for d, name in enumerate(names):
        if np.var(t[:, d]) > _CONSTANT_VARIANCE and np.var(p[:, d]) > _CONSTANT_VARIANCE:
            corr = float(np.corrcoef(t[:, d], p[:, d])[0, 1])
        else:
            corr = math.nan
            notes.append(f"corr for '{name}' undefined: targets or predictions are constant")
        ccc = concordance_correlation(t[:, d], p[:, d])
        if math.isnan(ccc):
            notes.append(f"ccc for '{name}' undefined: targets and predictions are one constant")
        per_dim[name] = {"rmse": float(rmse[d]), "corr": corr,
                         "sagr": sign_agreement(t[:, d], p[:, d]), "ccc": ccc}
    mean = {key: _nan_average(np.array([per_dim[name][key] for name in names])) for key in REGRESSION_MEASURES}
    return {"n": int(len(t)), "names": names, "per_dim": per_dim, "mean": mean, "notes": notes}


# --------------------------------------------------------------------------- bootstrap


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
                     group_codes: np.ndarray | None = None) -> Any:
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


def _interval(estimate: float, samples: np.ndarray, confidence: float) -> dict[str, Any]:
    """Percentile interval of the finite ``samples``; ``skipped`` counts the undefined ones."""
    ok = np.isfinite(samples)
    if ok.any():
        tail = 100.0 * (1.0 - confidence) / 2.0
        low, high = np.percentile(samples[ok], [tail, 100.0 - tail])
    else:
        low = high = math.nan
    return {"estimate": float(estimate), "low": float(low), "high": float(high),
            "skipped": int((~ok).sum())}


def bootstrap_intervals(y_true: Any, y_prob: Any, class_names: Sequence[str],
                        n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95, *,
                        from_logits: bool = False, groups: Any = None) -> dict[str, Any]:
    """Seeded percentile bootstrap intervals for accuracy, macro F1, per-class recall and
    per-class ROC AUC (same inputs as :func:`classification_metrics`).

    ``groups`` ``(N,)``: resample whole groups (e.g. the subjects of CK+, whose frames are not
    independent) instead of single samples.

    Returns ``{"accuracy": {estimate, low, high, skipped}, "macro_f1": {...},
    "recall": {class: {...}}, "roc_auc": {class: {...}}, "n_resamples", "confidence", "seed",
    "groups"}`` (``groups``: how many groups were resampled, ``None`` for samples);
    ``estimate`` is the full-sample value, ``skipped`` the resamples where the metric was
    undefined (class absent, or no negatives for AUC), left out of the interval.
    Macro F1 counts every class (F1 = 0 for a class neither present nor predicted).
    """
    _check_bootstrap_settings(n_resamples, confidence)
    names, y, p = _checked_inputs(y_true, y_prob, class_names, from_logits)
    k, n = len(names), len(y)
    codes = _group_codes(groups, n)
    pred = np.argmax(p, axis=1)
    cell = np.zeros((n, k * k))
    cell[np.arange(n), y * k + pred] = 1.0
    positives = [y == i for i in range(k)]

    def confusion_stats(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Accuracy (R,), macro F1 (R,), recall (R, K) from confusion matrices (R, K, K)."""
        tp = np.diagonal(cm, axis1=1, axis2=2)
        support, predicted = cm.sum(axis=2), cm.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(support > 0, tp / support, np.nan)
            f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
        return tp.sum(axis=1) / cm.sum(axis=(1, 2)), f1.mean(axis=1), recall

    accuracy, macro_f1, recall = confusion_stats((np.ones((1, n)) @ cell).reshape(1, k, k))
    auc = np.array([weighted_roc_auc(np.ones((1, n)), positives[i], p[:, i])[0] for i in range(k)])

    rng = np.random.default_rng(seed)
    acc_s, f1_s, rec_s, auc_s = [], [], [], []
    for counts in _resample_counts(rng, n, int(n_resamples), codes):
        a, f, r = confusion_stats((counts @ cell).reshape(-1, k, k))
        acc_s.append(a)
        f1_s.append(f)
        rec_s.append(r)
        auc_s.append(np.stack([weighted_roc_auc(counts, positives[i], p[:, i]) for i in range(k)], axis=1))
    rec_all, auc_all = np.concatenate(rec_s), np.concatenate(auc_s)
    return {
        "accuracy": _interval(accuracy[0], np.concatenate(acc_s), confidence),
        "macro_f1": _interval(macro_f1[0], np.concatenate(f1_s), confidence),
        "recall": {name: _interval(recall[0, i], rec_all[:, i], confidence) for i, name in enumerate(names)},
        "roc_auc": {name: _interval(auc[i], auc_all[:, i], confidence) for i, name in enumerate(names)},
        "n_resamples": int(n_resamples), "confidence": float(confidence), "seed": int(seed),
        "groups": None if codes is None else int(codes.max()) + 1,
    }


def bootstrap_regression_intervals(y_true: Any, y_pred: Any,
                                   names: Sequence[str] = REGRESSION_NAMES,
                                   n_resamples: int = 1000, seed: int = 0,
                                   confidence: float = 0.95, *, groups: Any = None) -> dict[str, Any]:
    """Seeded percentile bootstrap intervals for every measure of :func:`regression_metrics`
    (RMSE, CORR, SAGR, CCC) per dimension and their means (same inputs; ``groups`` as in
    :func:`bootstrap_intervals`).

    Returns ``{"rmse": {dim: {estimate, low, high, skipped}}, "corr": {...}, "sagr": {...},
    "ccc": {...}, "rmse_mean": {estimate, low, high, skipped}, "corr_mean": ..., "sagr_mean": ...,
    "ccc_mean": ..., "n_resamples", "confidence", "seed", "groups"}``; means skip undefined
    dimensions as :func:`regression_metrics` does, and a correlation is undefined where it is there.
    """
    _check_bootstrap_settings(n_resamples, confidence)
    names, t, p = _regression_arrays(y_true, y_pred, names)
    n, dims = t.shape
    codes = _group_codes(groups, n)
    agree = (np.sign(t) == np.sign(p)).astype(np.float64)
    shift = t.mean(axis=0)  # the measures are invariant to a common shift; centring avoids cancellation
    t, p = t - shift, p - shift
    columns = np.concatenate([t, p, t * t, p * p, t * p, (t - p) ** 2, agree], axis=1)  # (N, 7D)

    def stats(counts: np.ndarray) -> dict[str, np.ndarray]:
        """Each measure ``(R, D)`` under sample ``counts`` ``(R, N)``."""
        m = (counts @ columns / counts.sum(axis=1, keepdims=True)).reshape(-1, 7, dims)
        mt, mp, tt, pp, tp, se, sagr = (m[:, j] for j in range(7))
        var_t, var_p, cov = tt - mt**2, pp - mp**2, tp - mt * mp
        den = var_t + var_p + (mt - mp) ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            ccc = np.where(den > 0, 2.0 * cov / den, np.nan)
            corr = np.where((var_t > _CONSTANT_VARIANCE) & (var_p > _CONSTANT_VARIANCE),
                            cov / np.sqrt(var_t * var_p), np.nan)
        return {"rmse": np.sqrt(se), "corr": corr, "sagr": sagr, "ccc": ccc}

    full = stats(np.ones((1, n)))
    rng = np.random.default_rng(seed)
    parts = [stats(counts) for counts in _resample_counts(rng, n, int(n_resamples), codes)]
    out: dict[str, Any] = {}
    for key in REGRESSION_MEASURES:
        samples = np.concatenate([part[key] for part in parts])  # (R, D)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows -> NaN mean, counted as skipped
            mean_samples = np.nanmean(samples, axis=1)
        out[key] = {name: _interval(full[key][0, d], samples[:, d], confidence) for d, name in enumerate(names)}
        out[f"{key}_mean"] = _interval(_nan_average(full[key][0]), mean_samples, confidence)
    return out | {"n_resamples": int(n_resamples), "confidence": float(confidence), "seed": int(seed),
                  "groups": None if codes is None else int(codes.max()) + 1}
