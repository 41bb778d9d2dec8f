"""``comparison.html`` across runs of one dataset (e.g. VGG vs AlexNet): headline metrics
with the best marked, which model wins on which class, overlaid macro ROC curves, and
parameters, model size on disk and inference speed (and, for runs exported with
``kerascv-emotion export``, each exported file's size and single-image latency)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.reporting import html
from kerascv_emotion.reporting.artefacts import (
    TRAIN_HINT,
    Evaluation,
    Run,
    read_evaluation,
    read_run,
)
from kerascv_emotion.reporting.classification import macro_roc_curve
from kerascv_emotion.reporting.figures import (
    OutputWriter,
    check_formats,
    colours,
    grouped_bars_figure,
    new_figure,
    rotate_ticks,
    unit_square_axes,
)
from kerascv_emotion.reporting.tables import (
    NA,
    as_float,
    class_names_of,
    fmt,
    fmt_interval,
    fmt_params,
    markdown_table,
    md_escape,
    notes_markdown,
)
from kerascv_emotion.tasks import REGRESSION_MEASURES


@dataclass
class _Entry:
    """One compared run: its display name, artefacts and evaluation on the split."""

    name: str
    run: Run
    evaluation: Evaluation

    @property
    def metrics(self) -> dict[str, Any]:
        return self.evaluation.metrics

    @property
    def inference(self) -> Mapping[str, Any]:
        return self.metrics.get("inference") or {}


@dataclass(frozen=True)
class _Column:
    """A headline column: its value per run, whether higher (``max``) or lower (``min``) is
    better (``None``: not ranked), an optional bootstrap interval and a formatter."""

    header: str
    value: Callable[[_Entry], Any]
    better: str | None
    interval: Callable[[_Entry], Mapping[str, Any] | None] | None = None
    text: Callable[[Any], str] = fmt


def _boot(key: str) -> Callable[[_Entry], Mapping[str, Any] | None]:
    return lambda entry: (entry.metrics.get("bootstrap") or {}).get(key)


def _ms(value: Any) -> str:
    return fmt(value, 2)


def _mb(value: Any) -> str:
    return NA if value is None else f"{value / 1e6:.2f}"


_COST_COLUMNS = (
    _Column("parameters", lambda e: e.run.config.get("params"), "min", text=fmt_params),
    _Column("size on disk (MB)", lambda e: e.run.model_size, "min", text=_mb),
    _Column("inference (ms/image)", lambda e: e.inference.get("ms_per_image"), "min", text=_ms),
    _Column("inference device", lambda e: e.inference.get("device", NA), None, text=str),
)
CLASSIFICATION_COLUMNS = (
    _Column("architecture", lambda e: e.run.config.get("arch", NA), None, text=str),
    _Column("accuracy", lambda e: e.metrics.get("accuracy"), "max", _boot("accuracy")),
    _Column("balanced accuracy", lambda e: e.metrics.get("balanced_accuracy"), "max"),
    _Column("macro F1", lambda e: (e.metrics.get("macro_avg") or {}).get("f1"), "max", _boot("macro_f1")),
    _Column("weighted F1", lambda e: (e.metrics.get("weighted_avg") or {}).get("f1"), "max"),
    _Column("macro AUC", lambda e: e.metrics.get("roc_auc_macro"), "max"),
    _Column("Cohen's kappa", lambda e: e.metrics.get("cohen_kappa"), "max"),
    *_COST_COLUMNS,
)


def _export_variants(entries: Sequence[_Entry]) -> list[str]:
    """Exported variants (``RUN/export/<variant>/``, e.g. ``litert-int8``) of any run, sorted."""
    return sorted({variant for entry in entries for variant in entry.run.exports})


def _export_size(variant: str) -> Callable[[_Entry], Any]:
    return lambda entry: (entry.run.exports.get(variant) or {}).get("size_bytes")


def _export_latency(variant: str) -> Callable[[_Entry], Any]:
    return lambda entry: ((entry.run.exports.get(variant) or {}).get("latency") or {}).get("ms_median")


def _export_columns(entries: Sequence[_Entry]) -> tuple[_Column, ...]:
    """File size and single-image latency (1 CPU thread) of every exported variant."""
    return tuple(column for variant in _export_variants(entries) for column in (
        _Column(f"{variant} size (MB)", _export_size(variant), "min", text=_mb),
        _Column(f"{variant} latency (ms/image, 1 thread)", _export_latency(variant), "min", text=_ms)))


def _regression_columns(names: Sequence[str]) -> tuple[_Column, ...]:
    mean = [_Column(f"mean {label}", lambda e, k=key: (e.metrics.get("mean") or {}).get(k), better)
            for key, label, better in (("rmse", "RMSE", "min"), ("corr", "CORR", "max"),
                                       ("sagr", "SAGR", "max"), ("ccc", "CCC", "max"))]
    per_dim = [_Column(f"{name} {label}", lambda e, n=name, k=key: (e.metrics["per_dim"].get(n) or {}).get(k), better)
               for name in names for key, label, better in (("ccc", "CCC", "max"), ("rmse", "RMSE", "min"))]
    return (CLASSIFICATION_COLUMNS[0], *mean, *per_dim, *_COST_COLUMNS)


def _best_cells(entries: Sequence[_Entry], columns: Sequence[_Column]) -> set[tuple[int, int]]:
    """``(row, column)`` of the best value of every ranked column (all of them on a tie)."""
    best = set()
    for c, column in enumerate(columns):
        if column.better is None:
            continue
        values = np.array([as_float(column.value(entry)) for entry in entries])
        if not np.isfinite(values).any():
            continue
        target = np.nanmax(values) if column.better == "max" else np.nanmin(values)
        best |= {(r, c) for r, value in enumerate(values) if value == target}
    return best


def _headline(entries: Sequence[_Entry], columns: Sequence[_Column]) -> list[tuple[str, list[str]]]:
    rows = []
    for entry in entries:
        cells = []
        for column in columns:
            value = column.value(entry)
            interval = column.interval(entry) if column.interval else None
            cells.append(fmt_interval(value, interval) if interval else column.text(value))
        rows.append((entry.name, cells))
    return rows


def _display_names(paths: Sequence[Path], names: Sequence[str] | None) -> list[str]:
    """``names`` if given, else the run folders' names (with their parent's where two clash)."""
    if names is not None:
        if len(names) != len(paths):
            raise ConfigError(f"{len(names)} names given for {len(paths)} runs; give one name per run")
        out = [str(name) for name in names]
    else:
        resolved = [path.resolve() for path in paths]
        out = [path.name for path in resolved]
        if len(set(out)) < len(out):
            out = [f"{path.parent.name}/{path.name}" for path in resolved]
    if len(set(out)) < len(out):
        raise ConfigError(f"run names {out} are not unique; pass one distinct name per run (names=...)")
    return out


def per_class_matrix(entries: Sequence[_Entry], key: str = "f1") -> tuple[list[str], np.ndarray]:
    """Classes of all runs (first-seen order) and ``per_class[cls][key]`` as a (C, M) array,
    NaN where a run lacks the class or the value is undefined."""
    classes: list[str] = []
    for entry in entries:
        classes += [name for name in class_names_of(entry.metrics) if name not in classes]
    values = np.array([[as_float((entry.metrics["per_class"].get(name) or {}).get(key)) for entry in entries]
                       for name in classes])
    return classes, values


def row_best(values: np.ndarray) -> list[list[int]]:
    """Column indices of each row's maximum of ``values`` (all of them on a tie; none when
    the row has no finite value)."""
    return [[] if not np.isfinite(row).any() else [c for c, v in enumerate(row) if v == np.nanmax(row)]
            for row in values]


def winners(labels: Sequence[str], models: Sequence[str], values: np.ndarray, metric: str) -> list[str]:
    """One line per row of ``values`` (rows x models, higher is better):
    ``best on <row>: <model> (<metric> 0.870)``; tied models are all named."""
    lines = []
    for label, row, best in zip(labels, values, row_best(values), strict=True):
        if not best:
            lines.append(f"best on {label}: {NA} ({metric} undefined for every model)")
            continue
        tie = ", tie" if len(best) > 1 else ""
        lines.append(f"best on {label}: {', '.join(models[c] for c in best)} ({metric} {fmt(row[best[0]])}{tie})")
    return lines


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


def macro_roc_overlay_figure(entries: Sequence[_Entry], title: str = "Macro-average ROC curves") -> Figure:
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


def _csv_text(entries: Sequence[_Entry], classes: Sequence[str], f1: np.ndarray) -> str:
    """``comparison.csv``: one row per run with raw numbers (empty where undefined)."""
    def number(value: Any) -> str:
        x = as_float(value)
        return repr(x) if math.isfinite(x) else ""

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    classification = entries[0].run.task == "classification"
    if classification:
        keys = [("accuracy", lambda m: m.get("accuracy")), ("balanced_accuracy", lambda m: m.get("balanced_accuracy")),
                ("macro_f1", lambda m: (m.get("macro_avg") or {}).get("f1")),
                ("weighted_f1", lambda m: (m.get("weighted_avg") or {}).get("f1")),
                ("roc_auc_macro", lambda m: m.get("roc_auc_macro")), ("roc_auc_micro", lambda m: m.get("roc_auc_micro")),
                ("cohen_kappa", lambda m: m.get("cohen_kappa")), ("log_loss", lambda m: m.get("log_loss"))]
        per_label = [f"f1/{name}" for name in classes]
    else:
        keys = [(f"mean_{k}", lambda m, k=k: (m.get("mean") or {}).get(k)) for k in REGRESSION_MEASURES]
        per_label = [f"{k}/{name}" for name in classes for k in REGRESSION_MEASURES]
    variants = _export_variants(entries)
    writer.writerow(["name", "run_dir", "arch", "task", "split", "n", *[k for k, _ in keys], *per_label,
                     "params", "model_size_bytes", "ms_per_image", "inference_batch_size", "inference_device",
                     *[f"{variant}/{key}" for variant in variants for key in ("size_bytes", "latency_ms")]])
    for m, entry in enumerate(entries):
        metrics = entry.metrics
        if classification:
            per = [number(v) for v in f1[:, m]]
        else:
            per = [number((metrics["per_dim"].get(name) or {}).get(k)) for name in classes
                   for k in REGRESSION_MEASURES]
        writer.writerow([entry.name, str(entry.run.path), entry.run.config.get("arch", ""), entry.run.task,
                         entry.evaluation.split, metrics.get("n", ""), *[number(get(metrics)) for _, get in keys],
                         *per, entry.run.config.get("params", ""), entry.run.model_size,
                         number(entry.inference.get("ms_per_image")), entry.inference.get("batch_size", ""),
                         entry.inference.get("device", ""),
                         *[cell for variant in variants for cell in (_export_size(variant)(entry) or "",
                                                                     number(_export_latency(variant)(entry)))]])
    return buffer.getvalue()


def _settings_rows(entries: Sequence[_Entry]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The main settings of each run (a column per ``config.json`` key that any run has)."""
    wanted = [key for key in html.SETTINGS_FIRST if key != "versions"]
    wanted += ["learning_rate", "class_weight", "monitor", "tuned_from"]
    keys = [key for key in wanted if any(key in entry.run.config for entry in entries)]

    def text(config: Mapping[str, Any], key: str) -> str:
        if key not in config:
            return NA
        value = config[key]
        return json.dumps(value) if isinstance(value, dict | list) else "none" if value is None else str(value)

    return keys, [(entry.name, [text(entry.run.config, key) for key in keys]) for entry in entries]


_DATA_FACTS: dict[str, Callable[[_Entry], str]] = {
    "index": lambda e: str(e.metrics.get("index") or e.run.config.get("index", NA)),
    "split": lambda e: str(e.metrics.get("split") or e.evaluation.split),
    "classes": lambda e: ", ".join(str(c) for c in e.run.config.get("class_names") or e.run.class_names),
    "image count": lambda e: str(e.metrics.get("n", NA)),
}
"""What the runs were evaluated on; runs that differ in any of these are not comparable."""


def data_differences(entries: Sequence[_Entry]) -> list[str]:
    """One note per fact of :data:`_DATA_FACTS` on which the runs differ, naming each run's value."""
    notes = []
    for fact, value_of in _DATA_FACTS.items():
        values = {entry.name: value_of(entry) for entry in entries}
        if len(set(values.values())) > 1:
            listing = "; ".join(f"{name}: {value}" for name, value in values.items())
            notes.append(f"The runs were evaluated on different data ({fact} differs: {listing}); "
                         "their scores, and the best marked, are not comparable.")
    return notes


def comparison_notes(run_dirs: Sequence[str | os.PathLike], split: str = "test") -> list[str]:
    """:func:`data_differences` of the runs :func:`write_comparison` would compare (for the CLI)."""
    return data_differences(_load(run_dirs, split, None))


def _notes(entries: Sequence[_Entry]) -> list[str]:
    devices = {str(entry.inference.get("device")) for entry in entries if entry.inference}
    notes = data_differences(entries)
    if len(devices) > 1:
        notes.append(f"Inference speeds were measured on different devices ({', '.join(sorted(devices))}); "
                     "compare them with care.")
    missing = [entry.name for entry in entries if not entry.inference]
    if missing:
        notes.append(f"No inference timing in metrics.json for {', '.join(missing)}: re-run "
                     "`kerascv-emotion evaluate` to measure it.")
    if _export_variants(entries):
        notes.append("Exported files (`kerascv-emotion export`): size on disk and single-image latency on 1 CPU "
                     "thread (median after warm-up), measured on the machine that exported them; n/a: not exported "
                     "or exported before latency was measured.")
    for entry in entries:
        notes += [f"{entry.name}: {note}" for note in entry.metrics.get("notes") or []]
    return notes


def _load(run_dirs: Sequence[str | os.PathLike], split: str, names: Sequence[str] | None) -> list[_Entry]:
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise ConfigError("no runs to compare; give at least one run directory")
    entries = []
    for name, path in zip(_display_names(paths, names), paths, strict=True):
        run = read_run(path)
        if run.model_size is None:
            raise DataError(f"{path / 'model.keras'} not found; {TRAIN_HINT}")
        evaluation = read_evaluation(run.path, split, run.task, required=True)
        assert evaluation is not None  # required=True raises instead of returning None
        entries.append(_Entry(name=name, run=run, evaluation=evaluation))
    tasks = {entry.run.task for entry in entries}
    if len(tasks) > 1:
        listing = ", ".join(f"{entry.name} ({entry.run.task})" for entry in entries)
        raise ConfigError(f"runs of different tasks cannot be compared: {listing}; compare one task at a time")
    return entries


@dataclass
class _Parts:
    """The task-specific parts of a comparison: headline ``columns``, the per-label score
    ``values`` (labels x models, higher is better) and the figures already written."""

    columns: tuple[_Column, ...]
    unit: str  # "class" or "dimension"
    metric: str  # "F1" or "CCC"
    labels: list[str]
    values: np.ndarray
    items: list[tuple[bytes, str]]


def _classification_parts(entries: Sequence[_Entry], models: list[str], writer: OutputWriter) -> _Parts:
    labels, values = per_class_matrix(entries)
    items = [
        writer.figure("f1_heatmap", f1_heatmap_figure(labels, models, values),
                      "F1 per class and model; the best model of each class is outlined"),
        writer.figure("per_class_f1", grouped_bars_figure(labels, models, values, "class", "F1", "Per-class F1 by model"),
                      "Per-class F1 by model"),
        writer.figure("macro_roc", macro_roc_overlay_figure(entries), "Macro-average ROC curves"),
    ]
    return _Parts(CLASSIFICATION_COLUMNS, "class", "F1", labels, values, items)


def _regression_parts(entries: Sequence[_Entry], models: list[str], writer: OutputWriter) -> _Parts:
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
    return _Parts(_regression_columns(labels), "dimension", "CCC", labels, ccc, items)


def write_comparison(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, split: str = "test",
                     names: Sequence[str] | None = None) -> Path:
    """Compare runs evaluated on ``split``: writes figures (PNG), ``comparison.md``,
    ``comparison.csv`` and ``comparison.html`` into ``out_dir``; returns the HTML path.

    ``names`` labels the runs (default: the run folders' names). All runs must have the
    same task; classification runs may have different class lists (missing classes are n/a).
    """
    entries = _load(run_dirs, split, names)
    writer = OutputWriter(Path(out_dir), check_formats(("png",)))
    models = [entry.name for entry in entries]
    build = _classification_parts if entries[0].run.task == "classification" else _regression_parts
    parts = build(entries, models, writer)
    lines = winners(parts.labels, models, parts.values, parts.metric)
    columns = (*parts.columns, *_export_columns(entries))
    headline = _headline(entries, columns)
    best = _best_cells(entries, columns)
    headers = ["model", *(column.header for column in columns)]
    per_headers, per_title = [parts.unit, *models], f"{parts.metric} per {parts.unit}"
    per_rows = [(label, [fmt(v) for v in row]) for label, row in zip(parts.labels, parts.values, strict=True)]
    per_best = {(r, c) for r, columns in enumerate(row_best(parts.values)) for c in columns}
    notes = _notes(entries)
    legend = "best value of the column (highest score; fewest parameters, smallest file, fastest inference)"
    writer.text("comparison.csv", _csv_text(entries, parts.labels, parts.values))
    md_bold = {(r, c + 1) for r, c in best}  # + 1: the model-name column
    writer.text("comparison.md", "\n".join([
        f"# Comparison on {md_escape(split)}\n",
        markdown_table(headers, [[name, *cells] for name, cells in headline], bold=md_bold), f"Bold: {legend}.\n",
        f"## Best model per {parts.unit}\n", "\n".join(f"- {md_escape(line)}" for line in lines) + "\n",
        f"## {per_title}\n", markdown_table(per_headers, [[label, *cells] for label, cells in per_rows]),
        notes_markdown(notes),
    ]))
    settings_keys, settings_rows = _settings_rows(entries)
    body = (f"<h1>Comparison of {len(entries)} runs on {html.esc(split)}</h1>"
            f"<p class=\"subtitle\">{html.esc(', '.join(models))}</p>"
            f"<h2>Best model per {parts.unit}</h2><ul class=\"winners\">"
            + "".join(f"<li>{html.esc(line)}</li>" for line in lines) + "</ul>"
            f"<h2>Headline metrics</h2>{html.table(headers, headline, best=best)}"
            f"<p class=\"muted\">Highlighted: {legend}. In brackets: bootstrap intervals where evaluated.</p>"
            f"{html.notes(notes)}{html.figures(parts.items)}"
            f"<h2>{html.esc(per_title)}</h2>{html.table(per_headers, per_rows, best=per_best)}"
            f"<h2>Settings</h2>{html.table(['model', *settings_keys], settings_rows)}")
    return writer.text("comparison.html", html.page(f"Comparison on {split}", body))
