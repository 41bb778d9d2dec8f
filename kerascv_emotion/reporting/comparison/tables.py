"""The comparison's tables as data: headline columns (value per run, which way is better,
bootstrap interval), the best cell of each column and of each label's row, the
``comparison.csv`` text and the settings table."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kerascv_emotion.reporting import html
from kerascv_emotion.reporting.comparison.entries import (
    Entry,
    export_latency,
    export_size,
    export_variants,
)
from kerascv_emotion.reporting.tables import NA, as_float, fmt, fmt_interval, fmt_params
from kerascv_emotion.tasks import REGRESSION_MEASURES


@dataclass(frozen=True)
class Column:
    """A headline column: its value per run, whether higher (``max``) or lower (``min``) is
    better (``None``: not ranked), an optional bootstrap interval and a formatter."""

    header: str
    value: Callable[[Entry], Any]
    better: str | None
    interval: Callable[[Entry], Mapping[str, Any] | None] | None = None
    text: Callable[[Any], str] = fmt


def _boot(key: str) -> Callable[[Entry], Mapping[str, Any] | None]:
    return lambda entry: (entry.metrics.get("bootstrap") or {}).get(key)


def _ms(value: Any) -> str:
    return fmt(value, 2)


def _mb(value: Any) -> str:
    return NA if value is None else f"{value / 1e6:.2f}"


_COST_COLUMNS = (
    Column("parameters", lambda e: e.run.config.get("params"), "min", text=fmt_params),
    Column("size on disk (MB)", lambda e: e.run.model_size, "min", text=_mb),
    Column("inference (ms/image)", lambda e: e.inference.get("ms_per_image"), "min", text=_ms),
    Column("inference device", lambda e: e.inference.get("device", NA), None, text=str),
)
CLASSIFICATION_COLUMNS = (
    Column("architecture", lambda e: e.run.config.get("arch", NA), None, text=str),
    Column("accuracy", lambda e: e.metrics.get("accuracy"), "max", _boot("accuracy")),
    Column("balanced accuracy", lambda e: e.metrics.get("balanced_accuracy"), "max"),
    Column("macro F1", lambda e: (e.metrics.get("macro_avg") or {}).get("f1"), "max", _boot("macro_f1")),
    Column("weighted F1", lambda e: (e.metrics.get("weighted_avg") or {}).get("f1"), "max"),
    Column("macro AUC", lambda e: e.metrics.get("roc_auc_macro"), "max"),
    Column("Cohen's kappa", lambda e: e.metrics.get("cohen_kappa"), "max"),
    Column("ECE", lambda e: e.metrics.get("ece"), "min", _boot("ece")),
    *_COST_COLUMNS,
)


def export_columns(entries: Sequence[Entry]) -> tuple[Column, ...]:
    """File size and single-image latency (1 CPU thread) of every exported variant."""
    return tuple(column for variant in export_variants(entries) for column in (
        Column(f"{variant} size (MB)", export_size(variant), "min", text=_mb),
        Column(f"{variant} latency (ms/image, 1 thread)", export_latency(variant), "min", text=_ms)))


def regression_columns(names: Sequence[str]) -> tuple[Column, ...]:
    mean = [Column(f"mean {label}", lambda e, k=key: (e.metrics.get("mean") or {}).get(k), better)
            for key, label, better in (("rmse", "RMSE", "min"), ("corr", "CORR", "max"),
                                       ("sagr", "SAGR", "max"), ("ccc", "CCC", "max"))]
    per_dim = [Column(f"{name} {label}", lambda e, n=name, k=key: (e.metrics["per_dim"].get(n) or {}).get(k), better)
               for name in names for key, label, better in (("ccc", "CCC", "max"), ("rmse", "RMSE", "min"))]
    return (CLASSIFICATION_COLUMNS[0], *mean, *per_dim, *_COST_COLUMNS)


def best_cells(entries: Sequence[Entry], columns: Sequence[Column]) -> set[tuple[int, int]]:
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


def headline_rows(entries: Sequence[Entry], columns: Sequence[Column]) -> list[tuple[str, list[str]]]:
    rows = []
    for entry in entries:
        cells = []
        for column in columns:
            value = column.value(entry)
            interval = column.interval(entry) if column.interval else None
            cells.append(fmt_interval(value, interval) if interval else column.text(value))
        rows.append((entry.name, cells))
    return rows


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


def csv_text(entries: Sequence[Entry], classes: Sequence[str], f1: np.ndarray) -> str:
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
                ("cohen_kappa", lambda m: m.get("cohen_kappa")), ("log_loss", lambda m: m.get("log_loss")),
                ("ece", lambda m: m.get("ece"))]
        per_label = [f"f1/{name}" for name in classes]
    else:
        keys = [(f"mean_{k}", lambda m, k=k: (m.get("mean") or {}).get(k)) for k in REGRESSION_MEASURES]
        per_label = [f"{k}/{name}" for name in classes for k in REGRESSION_MEASURES]
    variants = export_variants(entries)
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
                         *[cell for variant in variants for cell in (export_size(variant)(entry) or "",
                                                                     number(export_latency(variant)(entry)))]])
    return buffer.getvalue()


def settings_rows(entries: Sequence[Entry]) -> tuple[list[str], list[tuple[str, list[str]]]]:
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


