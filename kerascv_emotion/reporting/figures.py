"""Figure plumbing shared by every report figure (Agg canvases, saving, colours, legends,
unit-square curve axes) and the figures drawn alike in several reports (grouped bars, tables).

Figures are built on :class:`matplotlib.figure.Figure` with an explicit
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg` (the Agg backend, set per
figure), so reporting never touches pyplot's global state or a display.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kerascv_emotion.errors import ConfigError
from kerascv_emotion.io import atomic_open, atomic_path
from kerascv_emotion.reporting.tables import NA

DPI = 100
FORMATS = ("png", "svg", "pdf")


def new_figure(width: float, height: float) -> Figure:
    """A ``width`` x ``height`` inch figure on an Agg canvas with constrained layout."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """Validate figure file formats (``png``, ``svg``, ``pdf``); returns them lower-cased."""
    out = tuple(fmt.lower().lstrip(".") for fmt in formats)
    unknown = [fmt for fmt in out if fmt not in FORMATS]
    if unknown:
        raise ConfigError(f"figure formats {unknown} are not supported; use some of {list(FORMATS)}")
    return out


def save_figure(fig: Figure, stem: Path, formats: Sequence[str]) -> bytes:
    """Write ``stem.<fmt>`` for each format atomically; returns the PNG bytes (for HTML)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    png = buffer.getvalue()
    for fmt in formats:
        target = stem.with_name(f"{stem.name}.{fmt}")
        if fmt == "png":
            with atomic_open(target, "wb") as handle:
                handle.write(png)
        else:
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format=fmt)
    return png


def colours(count: int) -> list[tuple[float, float, float, float]]:
    """``count`` distinguishable colours (tab10, then tab20 for more than ten)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def rotate_ticks(ax: Axes, labels: Sequence[str], axis: str = "x") -> None:
    """Put class-name tick labels on ``axis``; x labels are slanted so that long names
    do not overlap."""
    positions = list(range(len(labels)))
    if axis == "x":
        ax.set_xticks(positions, labels, rotation=35, ha="right", rotation_mode="anchor")
    else:
        ax.set_yticks(positions, labels)


def legend_below(ax: Axes, ncol: int = 2) -> None:
    """A legend under the axes (outside the data area)."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, fontsize=8, frameon=False)


def legend_right(ax: Axes) -> None:
    """The axes' legend as a figure legend right of the plot (outside the data area; use on
    single-axes figures)."""
    ax.figure.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize=8, frameon=False)


def unit_square_axes(ax: Axes, xlabel: str, ylabel: str, title: str, ymax: float = 1.01) -> None:
    """Finish axes of curves in [0, 1] x [0, 1] (ROC, precision-recall): square, a small
    margin (y up to ``ymax``), a grid and the legend right of the plot."""
    ax.set_box_aspect(1)
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, ymax), xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    legend_right(ax)


class OutputWriter:
    """Writes a report's files atomically under ``out_dir``; keeps each figure's PNG bytes
    (with its caption) for the HTML page."""

    def __init__(self, out_dir: Path, formats: Sequence[str]) -> None:
        self.out_dir = out_dir
        self.formats = formats

    def figure(self, stem: str, fig: Figure, caption: str) -> tuple[bytes, str]:
        """Save ``fig`` as ``out_dir/stem.<fmt>``; returns ``(png_bytes, caption)``."""
        return save_figure(fig, self.out_dir / stem, self.formats), caption

    def text(self, name: str, text: str) -> Path:
        """Write ``out_dir/name`` (UTF-8); returns its path."""
        path = self.out_dir / name
        with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        return path


def table_figure(headers: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]], title: str,
                 summary_rows: int = 0) -> Figure:
    """A table drawn as a figure: ``headers`` over a label column and the rows' cells;
    the last ``summary_rows`` rows are shaded. Column widths follow the longest text."""
    table_rows = [[label, *cells] for label, cells in rows]
    lengths = [max(len(str(row[c])) for row in [list(headers), *table_rows]) + 2 for c in range(len(headers))]
    width = min(14.0, 0.5 + 0.085 * sum(lengths))
    fig = new_figure(width, 0.7 + 0.3 * (len(table_rows) + 1))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title)
    table = ax.table(cellText=table_rows, colLabels=list(headers), colWidths=[n / sum(lengths) for n in lengths],
                     cellLoc="right", bbox=(0.0, 0.0, 1.0, 1.0))
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    for (row, col), cell in table.get_celld().items():
        if row == 0:
            cell.set_facecolor("#eef1f6")
            cell.set_text_props(fontweight="bold")
        elif row > len(table_rows) - summary_rows:
            cell.set_facecolor("#f7f8fb")
        if col == 0:
            cell.set_text_props(ha="left")
            cell.PAD = 0.03
    return fig


def grouped_bars_figure(labels: Sequence[str], models: Sequence[str], values: np.ndarray, xlabel: str, ylabel: str,
                        title: str, ylim: tuple[float, float] | None = (0.0, 1.0)) -> Figure:
    """Bars of ``values`` (len(labels) x M series, e.g. models or scores), grouped by label,
    one colour per series; undefined (NaN) values are marked n/a."""
    fig = new_figure(max(7.0, 1.5 + 0.35 * len(labels) * len(models)), 4.8)
    ax = fig.add_subplot()
    width = 0.8 / len(models)
    positions = np.arange(len(labels))
    for m, (model, colour) in enumerate(zip(models, colours(len(models)), strict=True)):
        xs = positions + (m - (len(models) - 1) / 2) * width
        ax.bar(xs, np.nan_to_num(values[:, m]), width, color=colour, label=model)
        for x in xs[np.isnan(values[:, m])]:
            ax.text(x, 0.0, NA, rotation=90, ha="center", va="bottom", fontsize=7)
    rotate_ticks(ax, labels, "x")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(models), 4), fontsize=8, frameon=False)
    return fig
