"""Numbers of the metrics JSON as table rows (strings), shared by the Markdown files,
the HTML tables and the table figures so that all three show the same values.

Undefined numbers (JSON ``null``, NaN) are written ``n/a``; bootstrap intervals, where the
metrics JSON has them, follow the estimate as ``0.810 [0.740, 0.870]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kerascv_emotion.tasks import REGRESSION_MEASURES

DIGITS = 3
NA = "n/a"
REPORT_KEYS = ("precision", "recall", "f1", "specificity", "roc_auc", "support")
REPORT_HEADERS = ("precision", "recall", "F1", "specificity", "AUC", "support")
REGRESSION_HEADERS = ("RMSE", "CORR", "SAGR", "CCC")
SUMMARY_KEYS = (
    ("accuracy", "accuracy"), ("balanced_accuracy", "balanced accuracy"),
    ("cohen_kappa", "Cohen's kappa"), ("log_loss", "log loss"), ("ece", "ECE (calibration error)"),
    ("roc_auc_micro", "ROC AUC (micro)"), ("roc_auc_macro", "ROC AUC (macro)"), ("n", "images"),
)
# Keys of the metrics JSON that have their own place in a report.
KNOWN_KEYS = {
    "task", "split", "n", "class_names", "accuracy", "balanced_accuracy", "cohen_kappa", "log_loss",
    "per_class", "macro_avg", "weighted_avg", "roc_auc_micro", "roc_auc_macro", "confusion_matrix",
    "notes", "bootstrap", "inference", "names", "per_dim", "mean", "index", "run", "arch", "skipped",
    "ece", "calibration",
}
Row = tuple[str, list[str]]


def as_float(value: Any) -> float:
    """A JSON number as a float; ``None`` and non-numbers are NaN."""
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fmt(value: Any, digits: int = DIGITS) -> str:
    """A number with ``digits`` decimals (integers as they are); ``n/a`` when undefined."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    number = as_float(value)
    if math.isnan(number) and isinstance(value, str):
        return value
    return NA if not math.isfinite(number) else f"{number:.{digits}f}"


def fmt_interval(value: Any, interval: Mapping[str, Any] | None, digits: int = DIGITS) -> str:
    """``value`` followed by its bootstrap ``[low, high]`` when ``interval`` is given."""
    text = fmt(value, digits)
    if interval is None or text == NA:
        return text
    return f"{text} [{fmt(interval.get('low'), digits)}, {fmt(interval.get('high'), digits)}]"


def class_names_of(metrics: Mapping[str, Any]) -> list[str]:
    """Class order of a classification metrics JSON."""
    return [str(name) for name in metrics.get("class_names") or list(metrics["per_class"])]


def classification_report_rows(metrics: Mapping[str, Any], digits: int = DIGITS) -> list[Row]:
    """One row per class, then ``accuracy``, ``macro avg`` and ``weighted avg``; cells in the
    order of :data:`REPORT_HEADERS`. The accuracy goes in the F1 column (as scikit-learn's
    report does); bootstrap intervals are added to recall, AUC, accuracy and macro F1."""
    boot = metrics.get("bootstrap") or {}
    n = metrics.get("n")
    rows: list[Row] = []
    for name in class_names_of(metrics):
        stats = metrics["per_class"][name]
        cells = []
        for key in REPORT_KEYS:
            interval = (boot.get(key) or {}).get(name) if key in ("recall", "roc_auc") else None
            cells.append(fmt_interval(stats.get(key), interval, digits))
        rows.append((name, cells))
    rows.append(("accuracy", ["", "", fmt_interval(metrics.get("accuracy"), boot.get("accuracy"), digits),
                              "", "", fmt(n)]))
    for label, key in (("macro avg", "macro_avg"), ("weighted avg", "weighted_avg")):
        stats = metrics.get(key) or {}
        cells = [fmt(stats.get(name), digits) for name in REPORT_KEYS[:-1]]
        if key == "macro_avg" and boot.get("macro_f1"):
            cells[2] = fmt_interval(stats.get("f1"), boot["macro_f1"], digits)
        rows.append((label, [*cells, fmt(n)]))
    return rows


def summary_rows(metrics: Mapping[str, Any], digits: int = DIGITS) -> list[tuple[str, str]]:
    """Headline scalars of a classification metrics JSON (with intervals where present),
    then any other top-level numbers or flat groups of numbers (e.g. a binary task's
    threshold metrics) as ``group.key``."""
    boot = metrics.get("bootstrap") or {}
    out = [(label, fmt_interval(metrics[key], boot.get(key), digits))
           for key, label in SUMMARY_KEYS if key in metrics]
    for key, value in metrics.items():
        if key in KNOWN_KEYS:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append((key, fmt(value, digits)))
        elif isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
            out.extend((f"{key}.{name}", fmt(v, digits)) for name, v in value.items())
    return out


def regression_rows(metrics: Mapping[str, Any], digits: int = DIGITS) -> list[Row]:
    """One row per dimension and a ``mean`` row; cells in the order of :data:`REGRESSION_HEADERS`,
    each with its bootstrap interval where the metrics JSON has one."""
    boot = metrics.get("bootstrap") or {}
    names = [str(name) for name in metrics.get("names") or list(metrics["per_dim"])]
    rows: list[Row] = [(name, [fmt_interval(metrics["per_dim"][name].get(key), (boot.get(key) or {}).get(name), digits)
                               for key in REGRESSION_MEASURES]) for name in names]
    mean = metrics.get("mean") or {}
    rows.append(("mean", [fmt_interval(mean.get(key), boot.get(f"{key}_mean"), digits) for key in REGRESSION_MEASURES]))
    return rows


def calibration_rows(calibration: Mapping[str, Any], digits: int = DIGITS) -> list[Row]:
    """ECE, MCE, Brier score and NLL of the raw and the temperature-scaled probabilities (cells:
    raw, calibrated; ``n/a`` without a temperature)."""
    scaled = calibration.get("calibrated") or {}
    return [(label, [fmt(calibration["raw"].get(key), digits), fmt(scaled.get(key), digits)])
            for key, label in (("ece", "ECE"), ("mce", "MCE"), ("brier", "Brier score"), ("nll", "NLL (nats)"))]


def interval_note(metrics: Mapping[str, Any]) -> str:
    """The sentence that explains the bracketed intervals (confidence, resamples, seed and
    groups of ``metrics["bootstrap"]``), or an empty string without bootstrap."""
    boot = metrics.get("bootstrap") or {}
    if not boot:
        return ""
    groups = f"; whole groups resampled, {fmt(boot['groups'])} of them, e.g. subjects" if boot.get("groups") else ""
    ece = boot.get("ece")
    shifted = (" ECE's is shifted down by its resampling bias, so that it spreads around the estimate, "
               "which itself runs high by about that much." if isinstance(ece, dict) and "bias" in ece else "")
    return (f"In brackets: bootstrap {fmt(boot.get('confidence'), 2)} percentile intervals "
            f"({fmt(boot.get('n_resamples'))} resamples, seed {fmt(boot.get('seed'))}{groups}).{shifted}")


def md_escape(text: str) -> str:
    """``text`` safe inside Markdown: punctuation that Markdown would interpret
    (``\\ | * ` < >``) is backslash-escaped and newlines become spaces."""
    return re.sub(r"([\\|*`<>])", r"\\\1", str(text)).replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                   bold: set[tuple[int, int]] | None = None) -> str:
    """A GitHub-flavoured Markdown table, every cell escaped; ``bold`` holds ``(row, column)``
    positions (0-based, over all columns) to write in bold."""
    bold = bold or set()
    lines = ["| " + " | ".join(md_escape(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r, row in enumerate(rows):
        cells = [f"**{md_escape(cell)}**" if (r, c) in bold and cell else md_escape(cell) for c, cell in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def classification_markdown(metrics: Mapping[str, Any], title: str, digits: int = DIGITS) -> str:
    """``classification_report.md``: the per-class table, the headline scalars and the notes."""
    table = markdown_table(["class", *REPORT_HEADERS],
                           [[name, *cells] for name, cells in classification_report_rows(metrics, digits)])
    summary = markdown_table(["metric", "value"], summary_rows(metrics, digits))
    parts = [f"# {md_escape(title)}\n", table, "## Summary\n", summary]
    parts += [_interval_paragraph(metrics), notes_markdown(metrics.get("notes") or [])]
    return "\n".join(part for part in parts if part)


def regression_markdown(metrics: Mapping[str, Any], title: str, digits: int = DIGITS) -> str:
    """``regression_report.md``: RMSE, CORR, SAGR and CCC per dimension and their means, with
    bootstrap intervals where computed."""
    table = markdown_table(["dimension", *REGRESSION_HEADERS],
                           [[name, *cells] for name, cells in regression_rows(metrics, digits)])
    parts = (f"# {md_escape(title)}\n", table, _interval_paragraph(metrics), notes_markdown(metrics.get("notes") or []))
    return "\n".join(part for part in parts if part)


def _interval_paragraph(metrics: Mapping[str, Any]) -> str:
    """:func:`interval_note` as a Markdown paragraph, or an empty string."""
    note = interval_note(metrics)
    return f"{md_escape(note)}\n" if note else ""


def notes_markdown(notes: Sequence[str]) -> str:
    """A ``## Notes`` list, or an empty string when there are none."""
    if not notes:
        return ""
    return "## Notes\n\n" + "\n".join(f"- {md_escape(note)}" for note in notes) + "\n"


def fmt_params(value: Any) -> str:
    """A parameter count with thousands separators, or ``n/a``."""
    return f"{int(value):,}" if isinstance(value, int | float) and math.isfinite(value) else NA


def fmt_size(size_bytes: int | None) -> str:
    """A file size in MB (10^6 bytes), or ``n/a``."""
    return NA if size_bytes is None else f"{size_bytes / 1e6:.2f} MB"


def fmt_speed(inference: Mapping[str, Any] | None) -> str:
    """``metrics["inference"]`` as ``1.23 ms/image (batch 32, CPU)``, or ``n/a``."""
    if not inference or not math.isfinite(as_float(inference.get("ms_per_image"))):
        return NA
    return (f"{fmt(inference['ms_per_image'], 2)} ms/image (batch {fmt(inference.get('batch_size'))}, "
            f"{inference.get('device', 'unknown device')})")
