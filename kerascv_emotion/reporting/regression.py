"""Valence/arousal regression figures from ``predictions.npz`` (``y_true`` and ``y_pred``,
both ``(N, 2)`` floats in [-1, 1]) and the regression metrics JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from kerascv_emotion.reporting.figures import colours, legend_below, new_figure, table_figure
from kerascv_emotion.reporting.tables import REGRESSION_HEADERS, fmt, regression_rows

MAX_ERROR_SEGMENTS = 400  # circumplex: join truth and prediction for at most this many images


def _limits(*arrays: np.ndarray) -> tuple[float, float]:
    """Axis limits covering [-1, 1] and the data, with a small margin."""
    low = min(-1.0, *(float(np.nanmin(a)) for a in arrays))
    high = max(1.0, *(float(np.nanmax(a)) for a in arrays))
    margin = 0.05 * (high - low)
    return low - margin, high + margin


def va_scatter_figure(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str],
                      metrics: Mapping[str, Any], title: str = "Predicted vs true") -> Figure:
    """Predicted against true value per dimension (one panel each) with the identity line;
    RMSE and CCC from the metrics JSON in each panel's title."""
    fig = new_figure(5.0 * len(names), 6.0)
    fig.suptitle(title)
    for d, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), d + 1)
        lims = _limits(y_true[:, d], y_pred[:, d])
        ax.scatter(y_true[:, d], y_pred[:, d], s=10, alpha=0.5, color=colours(len(names))[d], label="images")
        ax.plot(lims, lims, color="black", linewidth=1.0, label="ideal (predicted = true)")
        stats = metrics["per_dim"][name]
        ax.set_box_aspect(1)
        ax.set(xlim=lims, ylim=lims, xlabel=f"true {name}", ylabel=f"predicted {name}",
               title=f"{name}: RMSE {fmt(stats.get('rmse'))}, CCC {fmt(stats.get('ccc'))}")
        ax.grid(alpha=0.3)
        legend_below(ax)
    return fig


def circumplex_figure(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str] = ("valence", "arousal"),
                      title: str = "Valence-arousal plane: predictions against truth") -> Figure:
    """Truth and predictions in the valence (x) / arousal (y) plane with the unit circle;
    grey segments join each image's truth to its prediction (first images only)."""
    fig = new_figure(6.4, 6.8)
    ax = fig.add_subplot()
    lims = _limits(y_true, y_pred)
    shown = min(len(y_true), MAX_ERROR_SEGMENTS)
    segments = np.stack([y_true[:shown, :2], y_pred[:shown, :2]], axis=1)
    ax.add_collection(LineCollection(segments, colors="0.6", linewidths=0.6, alpha=0.5,
                                     label=f"error (truth to prediction, {shown} images)"))
    ax.scatter(y_true[:, 0], y_true[:, 1], s=12, marker="o", color="tab:blue", alpha=0.6, label="truth")
    ax.scatter(y_pred[:, 0], y_pred[:, 1], s=14, marker="x", color="tab:orange", alpha=0.8, label="prediction")
    ax.add_patch(Circle((0, 0), 1.0, fill=False, color="0.3", linewidth=1.0, label="unit circle"))
    ax.axhline(0, color="0.3", linewidth=0.6)
    ax.axvline(0, color="0.3", linewidth=0.6)
    ax.set_box_aspect(1)
    ax.set(xlim=lims, ylim=lims, xlabel=names[0], ylabel=names[1], title=title)
    ax.grid(alpha=0.3)
    legend_below(ax)
    return fig


def error_histogram_figure(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str],
                           title: str = "Prediction errors (predicted - true)") -> Figure:
    """Overlaid histograms of ``y_pred - y_true`` per dimension; mean and SD in the legend."""
    errors = y_pred - y_true
    fig = new_figure(7.5, 4.8)
    ax = fig.add_subplot()
    reach = 1.05 * max(float(np.abs(errors).max()), 0.1)
    bins = np.linspace(-reach, reach, 41)
    for d, (name, colour) in enumerate(zip(names, colours(len(names)), strict=True)):
        ax.hist(errors[:, d], bins=bins, alpha=0.5, color=colour,
                label=f"{name} (mean {errors[:, d].mean():+.3f}, SD {errors[:, d].std():.3f})")
    ax.axvline(0, color="black", linewidth=1.0, label="no error")
    ax.set(xlabel="error (predicted - true)", ylabel="images", title=title)
    ax.grid(alpha=0.3)
    legend_below(ax)
    return fig


def regression_table_figure(metrics: Mapping[str, Any], title: str = "Regression metrics") -> Figure:
    """RMSE, CORR, SAGR and CCC per dimension and their mean, drawn as a table."""
    return table_figure(["dimension", *REGRESSION_HEADERS], regression_rows(metrics), title, summary_rows=1)
