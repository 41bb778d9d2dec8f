"""Figures that compare runs: the F1 heatmap (classes x models) and the overlaid
macro-average ROC curves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from kerascv_emotion.reporting.classification import macro_roc_curve
from kerascv_emotion.reporting.comparison.entries import Entry
from kerascv_emotion.reporting.comparison.tables import row_best
from kerascv_emotion.reporting.figures import colours, new_figure, rotate_ticks, unit_square_axes
from kerascv_emotion.reporting.tables import fmt


def f1_heatmap_figure(classes: Sequence[str], models: Sequence[str], values: np.ndarray,
                      title: str = "F1 per class and model (best per class outlined)") -> Figure:
    """Heatmap of ``values`` (C classes x M models) with the number in each cell and the
    best model of each class outlined and bold."""
    fig = new_figure(max(5.5, 2.8 + 1.3 * len(models)), max(3.5, 1.4 + 0.5 * len(classes)))
    ax = fig.add_subplot()
    cmap = colormaps["viridis"].with_extremes(bad="#dddddd")  # undefined F1: grey
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    fig.colorbar(image, ax=ax, shrink=0.85).set_label("F1")
    for i, (row, winners_of_row) in enumerate(zip(values, row_best(values), strict=True)):
        for j, value in enumerate(row):
            best = j in winners_of_row
            ax.text(j, i, fmt(value), ha="center", va="center", fontsize=9,
                    fontweight="bold" if best else "normal",
                    color="white" if np.isfinite(value) and value < 0.6 else "black")
            if best:
                ax.add_patch(Rectangle((j - 0.48, i - 0.48), 0.96, 0.96, fill=False, edgecolor="#ff3b30",
                                       linewidth=2.5))
    ax.plot([], [], color="#ff3b30", linewidth=2.5, label="best model for the class")
    rotate_ticks(ax, models, "x")
    rotate_ticks(ax, classes, "y")
    ax.set(xlabel="model", ylabel="class", title=title)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.06), fontsize=8, frameon=False)
    return fig


def macro_roc_overlay_figure(entries: Sequence[Entry], title: str = "Macro-average ROC curves") -> Figure:
    """Each run's macro-average one-vs-rest ROC curve (macro AUC from its metrics JSON) and chance."""
    fig = new_figure(8.5, 5.6)
    ax = fig.add_subplot()
    for entry, colour in zip(entries, colours(len(entries)), strict=True):
        y_true = np.asarray(entry.evaluation.predictions["y_true"]).astype(int)
        curve = macro_roc_curve(y_true, np.asarray(entry.evaluation.predictions["y_prob"], dtype=float))
        label = f"{entry.name} (macro AUC {fmt(entry.metrics.get('roc_auc_macro'))})"
        if curve is None:
            ax.plot([], [], color=colour, label=f"{entry.name} (no class with positives and negatives)")
        else:
            ax.plot(*curve, color=colour, linewidth=1.8, label=label)
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=1.0, label="chance (AUC 0.5)")
    unit_square_axes(ax, "false positive rate", "true positive rate", title)
    return fig


