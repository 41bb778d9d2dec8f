"""Training-history figures: loss/accuracy curves and per-class scores over epochs.

Epochs are the 0-based global epochs of ``history.csv`` / ``metrics_log.jsonl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from kerascv_emotion.reporting.artefacts import History
from kerascv_emotion.reporting.figures import colours, legend_below, legend_right, new_figure
from kerascv_emotion.reporting.tables import as_float

PHASE_SHADES = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")


def _plot_line(ax: Axes, x: np.ndarray, y: np.ndarray, label: str, **style: Any) -> None:
    marker = "o" if len(x) <= 30 else None
    ax.plot(x, y, marker=marker, markersize=3, label=label, **style)


def mark_phases(ax: Axes, history: History) -> None:
    """Shade each tuning phase (labelled in the legend) and draw a vertical line where a
    new phase starts; plain single-phase runs are left unmarked."""
    if not history.has_tuning_phases():
        return
    for i, (name, first, last) in enumerate(history.segments()):
        ax.axvspan(first - 0.5, last + 0.5, color=PHASE_SHADES[i % len(PHASE_SHADES)], alpha=0.10,
                   label=f"phase {name} (epochs {first}-{last})")
        if i > 0:
            ax.axvline(first - 0.5, color="0.25", linewidth=1.2)


def mark_best(ax: Axes, best_epoch: int | None, label: str) -> None:
    """A dashed vertical line at the best epoch."""
    if best_epoch is not None:
        ax.axvline(best_epoch, color="black", linestyle="--", linewidth=1.0, label=label)


def training_curves_figure(history: History, monitor: str, best_epoch: int | None,
                           title: str = "Training curves") -> Figure:
    """Loss (train vs validation) and accuracy or the monitored score per epoch, the best
    epoch (by ``monitor``) marked and tuning phases shaded. Two panels side by side."""
    cols = history.columns
    x = history.epochs.astype(float)
    score_names = [name for name in ("accuracy", "val_accuracy") if name in cols]
    if "loss" not in monitor and monitor in cols and monitor not in score_names:
        score_names.append(monitor)
    panels = [("loss", [name for name in ("loss", "val_loss") if name in cols])]
    if score_names:
        panels.append((" / ".join(dict.fromkeys(name.removeprefix("val_") for name in score_names)), score_names))
    fig = new_figure(6.0 * len(panels), 4.4)
    fig.suptitle(title)
    best_label = "best epoch"
    if best_epoch is not None and monitor in cols:
        value = cols[monitor][int(np.flatnonzero(history.epochs == best_epoch)[0])]
        best_label = f"best epoch {best_epoch} ({monitor} {value:.3f})"
    for position, (ylabel, names) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), position)
        mark_phases(ax, history)
        for name in names:
            role = "validation" if name.startswith("val_") else "train"
            suffix = " (monitored)" if name == monitor else ""
            _plot_line(ax, x, cols[name], f"{role} {name.removeprefix('val_')}{suffix}",
                       linestyle=":" if name == monitor else "-" if role == "train" else "--")
        mark_best(ax, best_epoch, best_label)
        ax.set_xlabel("epoch (0-based)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel} per epoch")
        ax.grid(alpha=0.3)
        legend_below(ax)
    return fig


def per_class_over_epochs_figure(records: Sequence[dict[str, Any]], names: Sequence[str], group: str,
                                 key: str, average: tuple[str, str] | None, history: History | None,
                                 best_epoch: int | None, title: str) -> Figure:
    """``record[group][name][key]`` per epoch for every ``name`` (e.g. per-class F1 from
    ``metrics_log.jsonl``), with ``record[average[0]][average[1]]`` as a thick black line."""
    fig = new_figure(8.5, 4.6)
    ax = fig.add_subplot()
    x = np.array([int(record["epoch"]) for record in records], dtype=float)
    if history is not None:
        mark_phases(ax, history)
    for name, colour in zip(names, colours(len(names)), strict=True):
        y = np.array([as_float(((record.get(group) or {}).get(name) or {}).get(key)) for record in records])
        _plot_line(ax, x, y, str(name) if np.isfinite(y).any() else f"{name} (undefined every epoch)", color=colour)
    if average is not None:
        y = np.array([as_float((record.get(average[0]) or {}).get(average[1])) for record in records])
        _plot_line(ax, x, y, f"{average[0].replace('_', ' ')} {average[1]}", color="black", linewidth=2.2)
    mark_best(ax, best_epoch, "best epoch")
    ax.set_xlabel("epoch (0-based)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"validation {key}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    legend_right(ax)
    return fig
