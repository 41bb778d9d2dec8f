"""``write_comparison``: the task's figures, then ``comparison.csv``, ``comparison.md`` and
``comparison.html`` of the loaded runs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerascv_emotion.reporting import html
from kerascv_emotion.reporting.comparison.entries import (
    Entry,
    load_entries,
    per_class_matrix,
    run_notes,
)
from kerascv_emotion.reporting.comparison.figures import f1_heatmap_figure, macro_roc_overlay_figure
from kerascv_emotion.reporting.comparison.tables import (
    CLASSIFICATION_COLUMNS,
    Column,
    best_cells,
    csv_text,
    export_columns,
    headline_rows,
    regression_columns,
    row_best,
    settings_rows,
    winners,
)
from kerascv_emotion.reporting.figures import OutputWriter, check_formats, grouped_bars_figure
from kerascv_emotion.reporting.tables import (
    as_float,
    fmt,
    markdown_table,
    md_escape,
    notes_markdown,
)


@dataclass
class _Parts:
    """The task-specific parts of a comparison: headline ``columns``, the per-label score
    ``values`` (labels x models, higher is better) and the figures already written."""

    columns: tuple[Column, ...]
    unit: str  # "class" or "dimension"
    metric: str  # "F1" or "CCC"
    labels: list[str]
    values: np.ndarray
    items: list[tuple[bytes, str]]


def _classification_parts(entries: Sequence[Entry], models: list[str], writer: OutputWriter) -> _Parts:
    labels, values = per_class_matrix(entries)
    items = [
        writer.figure("f1_heatmap", f1_heatmap_figure(labels, models, values),
                      "F1 per class and model; the best model of each class is outlined"),
        writer.figure("per_class_f1", grouped_bars_figure(labels, models, values, "class", "F1", "Per-class F1 by model"),
                      "Per-class F1 by model"),
        writer.figure("macro_roc", macro_roc_overlay_figure(entries), "Macro-average ROC curves"),
    ]
    return _Parts(CLASSIFICATION_COLUMNS, "class", "F1", labels, values, items)


def _regression_parts(entries: Sequence[Entry], models: list[str], writer: OutputWriter) -> _Parts:
    labels = [str(name) for name in entries[0].metrics.get("names") or entries[0].run.class_names]

    def matrix(key: str) -> np.ndarray:
        return np.array([[as_float((entry.metrics["per_dim"].get(name) or {}).get(key)) for entry in entries]
                         for name in labels])

    ccc, rmse = matrix("ccc"), matrix("rmse")
    low = min(0.0, float(np.nanmin(ccc, initial=0.0)))
    items = [
        writer.figure("per_dim_ccc", grouped_bars_figure(labels, models, ccc, "dimension", "CCC",
                                                         "CCC per dimension by model", ylim=(low, 1.0)),
                      "CCC per dimension by model (higher is better)"),
        writer.figure("per_dim_rmse", grouped_bars_figure(labels, models, rmse, "dimension", "RMSE",
                                                          "RMSE per dimension by model", ylim=None),
                      "RMSE per dimension by model (lower is better)"),
    ]
    return _Parts(regression_columns(labels), "dimension", "CCC", labels, ccc, items)


def write_comparison(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, split: str = "test",
                     names: Sequence[str] | None = None) -> Path:
    """Compare runs evaluated on ``split``: writes figures (PNG), ``comparison.md``,
    ``comparison.csv`` and ``comparison.html`` into ``out_dir``; returns the HTML path.

    ``names`` labels the runs (default: the run folders' names). All runs must have the
    same task; classification runs may have different class lists (missing classes are n/a).
    """
    entries = load_entries(run_dirs, split, names)
    writer = OutputWriter(Path(out_dir), check_formats(("png",)))
    models = [entry.name for entry in entries]
    build = _classification_parts if entries[0].run.task == "classification" else _regression_parts
    parts = build(entries, models, writer)
    lines = winners(parts.labels, models, parts.values, parts.metric)
    columns = (*parts.columns, *export_columns(entries))
    headline = headline_rows(entries, columns)
    best = best_cells(entries, columns)
    headers = ["model", *(column.header for column in columns)]
    per_headers, per_title = [parts.unit, *models], f"{parts.metric} per {parts.unit}"
    per_rows = [(label, [fmt(v) for v in row]) for label, row in zip(parts.labels, parts.values, strict=True)]
    per_best = {(r, c) for r, columns in enumerate(row_best(parts.values)) for c in columns}
    notes = run_notes(entries)
    legend = "best value of the column (highest score; fewest parameters, smallest file, fastest inference)"
    writer.text("comparison.csv", csv_text(entries, parts.labels, parts.values))
    md_bold = {(r, c + 1) for r, c in best}  # + 1: the model-name column
    writer.text("comparison.md", "\n".join([
        f"# Comparison on {md_escape(split)}\n",
        markdown_table(headers, [[name, *cells] for name, cells in headline], bold=md_bold), f"Bold: {legend}.\n",
        f"## Best model per {parts.unit}\n", "\n".join(f"- {md_escape(line)}" for line in lines) + "\n",
        f"## {per_title}\n", markdown_table(per_headers, [[label, *cells] for label, cells in per_rows]),
        notes_markdown(notes),
    ]))
    settings_keys, settings = settings_rows(entries)
    body = (f"<h1>Comparison of {len(entries)} runs on {html.esc(split)}</h1>"
            f"<p class=\"subtitle\">{html.esc(', '.join(models))}</p>"
            f"<h2>Best model per {parts.unit}</h2><ul class=\"winners\">"
            + "".join(f"<li>{html.esc(line)}</li>" for line in lines) + "</ul>"
            f"<h2>Headline metrics</h2>{html.table(headers, headline, best=best)}"
            f"<p class=\"muted\">Highlighted: {legend}. In brackets: bootstrap intervals where evaluated.</p>"
            f"{html.notes(notes)}{html.figures(parts.items)}"
            f"<h2>{html.esc(per_title)}</h2>{html.table(per_headers, per_rows, best=per_best)}"
            f"<h2>Settings</h2>{html.table(['model', *settings_keys], settings)}")
    return writer.text("comparison.html", html.page(f"Comparison on {split}", body))
