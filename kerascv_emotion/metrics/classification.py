"""Metrics of a K-class classifier from label ids and class probabilities (scikit-learn
underneath): the classification "Metrics JSON" of ``docs/architecture.md``."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from kerascv_emotion.metrics.arrays import MetricInputError, classification_arrays, nan_average


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
    names, y, p = classification_arrays(y_true, y_prob, class_names, from_logits)
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
            "specificity": nan_average(specificity, weights),
            "roc_auc": nan_average(roc_auc, weights),
            "average_precision": nan_average(average_precision, weights),
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
