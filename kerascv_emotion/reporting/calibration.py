"""Calibration and explanation figures of a classification run: the reliability diagram
before and after temperature scaling (from the metrics JSON's ``calibration``), and galleries
of test images with their Grad-CAM heat maps (from ``eval/<split>/gallery.npz``, written by
``evaluate``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from kerascv_emotion.reporting.figures import new_figure
from kerascv_emotion.reporting.tables import fmt

HEAT_ALPHA = 0.45  # as kerascv_emotion.explain.ALPHA
HEAT_COLORMAP = "jet"  # as kerascv_emotion.explain.COLORMAP


def reliability_figure(calibration: Mapping[str, Any]) -> Figure:
    """Accuracy against mean confidence per confidence bin (bars; the diagonal is perfect
    calibration) and the images per bin, for the raw probabilities and, when a temperature
    was applied, the calibrated ones side by side."""
    panels = [("raw probabilities", calibration["raw"])]
    if calibration.get("calibrated"):
        panels.append((f"temperature {fmt(calibration['temperature'])}", calibration["calibrated"]))
    fig = new_figure(4.2 * len(panels) + 0.6, 5.6)
    grid = fig.add_gridspec(2, len(panels), height_ratios=[3, 1])
    for column, (label, figures) in enumerate(panels):
        diagram = figures["reliability"]
        edges = np.asarray(diagram["edges"], dtype=float)
        width = np.diff(edges)
        accuracy = np.array([np.nan if v is None else v for v in diagram["accuracy"]], dtype=float)
        confidence = np.array([np.nan if v is None else v for v in diagram["confidence"]], dtype=float)
        top: Axes = fig.add_subplot(grid[0, column])
        top.bar(edges[:-1], np.nan_to_num(accuracy), width, align="edge", color="#4c72b0", edgecolor="white",
                label="accuracy")
        top.bar(edges[:-1], np.nan_to_num(confidence - accuracy), width, bottom=np.nan_to_num(accuracy),
                align="edge", color="#dd8452", alpha=0.45, edgecolor="#dd8452", label="gap to confidence")
        top.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy",
                title=f"{label}\nECE {fmt(figures['ece'])}, MCE {fmt(figures['mce'])}, NLL {fmt(figures['nll'])}")
        top.grid(alpha=0.3)
        top.legend(loc="upper left", fontsize=7, frameon=False)
        bottom: Axes = fig.add_subplot(grid[1, column], sharex=top)
        bottom.bar(edges[:-1], diagram["count"], width, align="edge", color="#8c8c8c", edgecolor="white")
        bottom.set(xlabel="confidence (largest probability)", ylabel="images")
    fig.suptitle("Reliability diagram")
    return fig


def _blank(ax: Axes) -> None:
    """An empty gallery slot: no ticks, no frame (its row label stays visible)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _heat_axes(ax: Axes, image: np.ndarray, heat: np.ndarray, title: str, colour: str) -> None:
    """``image`` (H, W, C) uint8 with ``heat`` (H, W) in 0..1 over it, titled, no ticks."""
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
    ax.imshow(np.asarray(heat, dtype=float), cmap=HEAT_COLORMAP, alpha=HEAT_ALPHA, vmin=0.0, vmax=1.0)
    ax.set_title(title, fontsize=7, color=colour)
    ax.set_xticks([])
    ax.set_yticks([])


def class_gallery_figure(gallery: Mapping[str, np.ndarray], class_names: Sequence[str]) -> Figure | None:
    """One row per predicted class: its most confident right predictions (left) and most
    confident wrong ones (right, titled with the true class), each with its Grad-CAM heat map;
    ``None`` when the gallery has none."""
    kinds = np.asarray(gallery["kind"])
    keep = np.flatnonzero(kinds != "confusion")
    if not len(keep):
        return None
    per_kind = max(int(np.sum((kinds == kind) & (gallery["y_pred"] == c)))
                   for kind in ("correct", "wrong") for c in range(len(class_names)))
    rows = [c for c in range(len(class_names)) if np.any(gallery["y_pred"][keep] == c)]
    fig = new_figure(1.25 * 2 * per_kind + 1.2, 1.45 * len(rows) + 0.6)
    axes = fig.subplots(len(rows), 2 * per_kind, squeeze=False)
    for r, c in enumerate(rows):
        axes[r, 0].set_ylabel(class_names[c], fontsize=8)
        for offset, kind in ((0, "correct"), (per_kind, "wrong")):
            picked = keep[(kinds[keep] == kind) & (gallery["y_pred"][keep] == c)]
            for slot in range(per_kind):
                ax = axes[r, offset + slot]
                if slot >= len(picked):
                    _blank(ax)
                    continue
                i = picked[slot]
                title = (f"right {gallery['confidence'][i]:.2f}" if kind == "correct"
                         else f"was {class_names[gallery['y_true'][i]]} {gallery['confidence'][i]:.2f}")
                _heat_axes(ax, gallery["images"][i], gallery["heat"][i], title,
                           "#1a7f37" if kind == "correct" else "#c0392b")
    fig.suptitle("Most confident predictions per predicted class: right (left), wrong (right)")
    return fig


def confusion_gallery_figure(gallery: Mapping[str, np.ndarray], class_names: Sequence[str]) -> Figure | None:
    """One row per large off-diagonal confusion-matrix cell (true -> predicted): its most
    confident images with their heat maps; ``None`` when there is no confusion."""
    kinds = np.asarray(gallery["kind"])
    picked = np.flatnonzero(kinds == "confusion")
    if not len(picked):
        return None
    cells = list(dict.fromkeys((int(gallery["y_true"][i]), int(gallery["y_pred"][i])) for i in picked))
    per_cell = max(sum(1 for i in picked if (gallery["y_true"][i], gallery["y_pred"][i]) == cell) for cell in cells)
    fig = new_figure(1.25 * per_cell + 1.6, 1.45 * len(cells) + 0.6)
    axes = fig.subplots(len(cells), per_cell, squeeze=False)
    for r, (t, p) in enumerate(cells):
        members = [i for i in picked if (gallery["y_true"][i], gallery["y_pred"][i]) == (t, p)]
        for slot in range(per_cell):
            ax = axes[r, slot]
            if slot >= len(members):
                _blank(ax)
                continue
            _heat_axes(ax, gallery["images"][members[slot]], gallery["heat"][members[slot]],
                       f"{gallery['confidence'][members[slot]]:.2f}", "black")
        axes[r, 0].set_ylabel(f"{class_names[t]}\n-> {class_names[p]}", fontsize=8)
    fig.suptitle("Largest confusions (true -> predicted), most confident first")
    return fig
