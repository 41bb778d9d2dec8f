"""Classification figures from ``predictions.npz`` and the metrics JSON.

``y_true`` is ``(N,)`` int class ids, ``y_prob`` ``(N, K)`` class probabilities; AUC and
AP values in legends are read from the metrics JSON so that figures and tables agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from kerascv_emotion.reporting.figures import (
    colours,
    grouped_bars_figure,
    new_figure,
    rotate_ticks,
    table_figure,
    unit_square_axes,
)
from kerascv_emotion.reporting.tables import (
    NA,
    REPORT_HEADERS,
    as_float,
    class_names_of,
    classification_report_rows,
    fmt,
)

FPR_GRID = np.linspace(0.0, 1.0, 201)
Points = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # (truth, score) -> curve x, y


def _defined(y_true: np.ndarray, class_id: int) -> bool:
    """One-vs-rest curves need both positives and negatives of the class."""
    positives = int(np.sum(y_true == class_id))
    return 0 < positives < len(y_true)


def _roc_points(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates of ``score`` ``(N,)`` for the boolean ``truth`` ``(N,)``."""
    fpr, tpr, _ = roc_curve(truth, score)
    return fpr, tpr


def _precision_recall_points(truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision (x then y) of ``score`` ``(N,)`` for the boolean ``truth`` ``(N,)``."""
    precision, recall, _ = precision_recall_curve(truth, score)
    return recall, precision


def macro_roc_curve(y_true: np.ndarray, y_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Macro-average one-vs-rest ROC: the mean TPR of the defined classes interpolated on
    :data:`FPR_GRID` (both (201,)); ``None`` when no class has positives and negatives."""
    curves = []
    for class_id in range(y_prob.shape[1]):
        if _defined(y_true, class_id):
            curves.append(np.interp(FPR_GRID, *_roc_points(y_true == class_id, y_prob[:, class_id])))
    if not curves:
        return None
    mean = np.mean(curves, axis=0)
    mean[0] = 0.0
    return FPR_GRID, mean


def _class_curves(ax: Axes, y_true: np.ndarray, y_prob: np.ndarray, metrics: Mapping[str, Any], *,
                  score_key: str, score_label: str, points: Points,
                  drawable: Callable[[np.ndarray, int], bool], missing: str, **style: Any) -> None:
    """One one-vs-rest curve ``points(y_true == class, y_prob[:, class])`` per class, its score
    ``per_class[name][score_key]`` from the metrics JSON in the legend; a class that is not
    ``drawable`` gets only a legend line saying ``missing``."""
    names = class_names_of(metrics)
    for class_id, (name, colour) in enumerate(zip(names, colours(len(names)), strict=True)):
        score = fmt(metrics["per_class"][name].get(score_key))
        if drawable(y_true, class_id):
            ax.plot(*points(y_true == class_id, y_prob[:, class_id]), color=colour, linewidth=1.3,
                    label=f"{name} ({score_label} {score})", **style)
        else:
            ax.plot([], [], color=colour, label=f"{name} ({score_label} {NA}, {missing})")


def roc_figure(y_true: np.ndarray, y_prob: np.ndarray, metrics: Mapping[str, Any],
               title: str = "ROC curves (one-vs-rest)") -> Figure:
    """One-vs-rest ROC per class (AUC in the legend), micro and macro averages and the
    chance diagonal. Classes without positives or negatives are listed as n/a."""
    y_true = np.asarray(y_true).astype(int)
    fig = new_figure(9.5, 5.6)
    ax = fig.add_subplot()
    _class_curves(ax, y_true, y_prob, metrics, score_key="roc_auc", score_label="AUC", points=_roc_points,
                  drawable=_defined, missing="see notes")
    onehot = np.eye(len(class_names_of(metrics)))[y_true]
    ax.plot(*_roc_points(onehot.ravel(), y_prob.ravel()), color="black", linestyle=":", linewidth=2.2,
            label=f"micro-average (AUC {fmt(metrics.get('roc_auc_micro'))})")
    macro = macro_roc_curve(y_true, y_prob)
    if macro is not None:
        ax.plot(*macro, color="0.35", linestyle="--", linewidth=2.2,
                label=f"macro-average (AUC {fmt(metrics.get('roc_auc_macro'))})")
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=1.0, label="chance (AUC 0.5)")
    unit_square_axes(ax, "false positive rate (1 - specificity)", "true positive rate (sensitivity)", title)
    return fig


def precision_recall_figure(y_true: np.ndarray, y_prob: np.ndarray, metrics: Mapping[str, Any],
                            title: str = "Precision-recall curves (one-vs-rest)") -> Figure:
    """Precision against recall per class, average precision (AP) in the legend."""
    y_true = np.asarray(y_true).astype(int)
    fig = new_figure(9.5, 5.6)
    ax = fig.add_subplot()
    _class_curves(ax, y_true, y_prob, metrics, score_key="average_precision", score_label="AP",
                  points=_precision_recall_points, drawable=lambda y, c: bool(np.any(y == c)),
                  missing="no positives", drawstyle="steps-post")
    unit_square_axes(ax, "recall (sensitivity)", "precision", title, ymax=1.05)
    return fig


def confusion_cells(matrix: Sequence[Sequence[float]], normalize: bool) -> tuple[np.ndarray, list[list[str]]]:
    """The values drawn in a confusion matrix and their cell texts: counts as integers, or
    rows divided by their sums with two decimals (``n/a`` for a class absent from y_true)."""
    counts = np.asarray(matrix, dtype=float)
    if not normalize:
        return counts, [[str(int(round(v))) for v in row] for row in counts]
    sums = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(sums > 0, counts / sums, np.nan)
    return values, [[NA if np.isnan(v) else f"{v:.2f}" for v in row] for row in values]


def confusion_matrix_figure(matrix: Sequence[Sequence[float]], class_names: Sequence[str],
                            normalize: bool = False, title: str | None = None) -> Figure:
    """Confusion matrix (true rows, predicted columns) with the number in every cell and a
    colour bar; ``normalize=True`` divides each row by its number of true images."""
    values, texts = confusion_cells(matrix, normalize)
    k = len(class_names)
    size = max(4.0, 1.6 + 0.75 * k)
    fig = new_figure(size + 1.2, size)
    ax = fig.add_subplot()
    cmap = colormaps["Blues"].with_extremes(bad="#dddddd")  # rows of absent classes: grey
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0,
                      vmax=1.0 if normalize else max(1.0, float(np.nanmax(values))))
    colourbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colourbar.set_label("fraction of the true class" if normalize else "images")
    threshold = (1.0 if normalize else max(1.0, float(np.nanmax(values)))) / 2
    fontsize = 10 if k <= 6 else 8
    for i in range(k):
        for j in range(k):
            dark = np.isfinite(values[i, j]) and values[i, j] > threshold
            ax.text(j, i, texts[i][j], ha="center", va="center", fontsize=fontsize,
                    color="white" if dark else "black")
    rotate_ticks(ax, class_names, "x")
    rotate_ticks(ax, class_names, "y")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or ("Confusion matrix (row-normalised)" if normalize else "Confusion matrix (counts)"))
    return fig


def classification_report_figure(metrics: Mapping[str, Any], title: str = "Classification report") -> Figure:
    """The classification report (:func:`~kerascv_emotion.reporting.tables.classification_report_rows`)
    drawn as a table."""
    return table_figure(["class", *REPORT_HEADERS], classification_report_rows(metrics), title, summary_rows=3)


def per_class_bars_figure(metrics: Mapping[str, Any], title: str = "Per-class precision, recall and F1") -> Figure:
    """Grouped bars of precision, recall and F1 per class; undefined values marked n/a."""
    names = class_names_of(metrics)
    values = np.array([[as_float(metrics["per_class"][name].get(key)) for key in ("precision", "recall", "f1")]
                       for name in names])
    return grouped_bars_figure(names, ["precision", "recall", "F1"], values, "class", "score", title)
