"""``report.html`` for one run: training curves, evaluation figures, tables and settings."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kerascv_emotion.errors import DataError
from kerascv_emotion.reporting import html
from kerascv_emotion.reporting.artefacts import (
    Evaluation,
    Run,
    evaluate_hint,
    read_evaluation,
    read_run,
)
from kerascv_emotion.reporting.calibration import (
    class_gallery_figure,
    confusion_gallery_figure,
    reliability_figure,
)
from kerascv_emotion.reporting.classification import (
    classification_report_figure,
    confusion_matrix_figure,
    per_class_bars_figure,
    precision_recall_figure,
    roc_figure,
)
from kerascv_emotion.reporting.curves import per_class_over_epochs_figure, training_curves_figure
from kerascv_emotion.reporting.figures import OutputWriter, check_formats
from kerascv_emotion.reporting.regression import (
    circumplex_figure,
    error_histogram_figure,
    regression_table_figure,
    va_scatter_figure,
)
from kerascv_emotion.reporting.tables import (
    REGRESSION_HEADERS,
    REPORT_HEADERS,
    calibration_rows,
    class_names_of,
    classification_markdown,
    classification_report_rows,
    fmt,
    fmt_params,
    fmt_size,
    fmt_speed,
    interval_note,
    regression_markdown,
    regression_rows,
    summary_rows,
)
from kerascv_emotion.runs import MEMBERS_KEY, temperature_mismatch

_CLASSIFICATION_MD, _REGRESSION_MD = "classification_report.md", "regression_report.md"
_EVALUATED_MARKERS = (_CLASSIFICATION_MD, _REGRESSION_MD)
"""Files only a report with evaluation results writes."""


def _check_shapes(run: Run, evaluation: Evaluation, names: Sequence[str]) -> None:
    """``predictions.npz`` must match the class list (or the two regression outputs)."""
    arrays = evaluation.predictions
    key = "y_prob" if run.task == "classification" else "y_pred"
    n = len(arrays["y_true"])
    if arrays[key].shape != (n, len(names)):
        path = run.path / "eval" / evaluation.split / "predictions.npz"
        raise DataError(f"{path}: {key} has shape {arrays[key].shape}, expected ({n}, {len(names)}) for "
                        f"{list(names)}; {evaluate_hint(run.path, evaluation.split)}")


def _members_section(run: Run) -> str:
    """An ensemble's members (it has no training of its own)."""
    rows = [(Path(m["run"]).name, [str(m["arch"]), f"{m['image_size']} x {m['image_size']} x {m['channels']}",
                                   f"{m['weight']:.3f}", str(m["run"])]) for m in run.config[MEMBERS_KEY]]
    return ("<h2>Ensemble</h2><p>The weighted mean of the members' probabilities; each member sees the "
            "input resized to its own size.</p>"
            f"{html.table(['member', 'architecture', 'input', 'weight', 'run folder'], rows)}")


def _training_section(run: Run, writer: OutputWriter) -> str:
    if run.history is None:
        return _members_section(run)
    monitor, mode = run.monitor
    best = run.best_epoch()
    items = [writer.figure("training_curves", training_curves_figure(
        run.history, monitor, best, title=f"Training curves: {run.name}"),
        "Loss and accuracy per epoch, train vs validation; black dashed line: best epoch"
        + ("; shaded: tuning phases" if run.history.has_tuning_phases() else ""))]
    notes = []
    if run.records:
        if run.task == "classification":
            fig = per_class_over_epochs_figure(run.records, run.class_names, "per_class", "f1", ("macro_avg", "f1"),
                                               run.history, best, "Validation F1 per class over epochs")
            items.append(writer.figure("per_class_f1", fig, "Validation F1 per class per epoch (PerClassMetrics log)"))
        else:
            fig = per_class_over_epochs_figure(run.records, run.class_names, "per_dim", "ccc", ("mean", "ccc"),
                                               run.history, best, "Validation CCC per dimension over epochs")
            items.append(writer.figure("per_dim_ccc", fig, "Validation CCC per dimension per epoch"))
    else:
        notes.append(f"{run.path / 'metrics_log.jsonl'} not found: per-class curves need the PerClassMetrics "
                     "log that `kerascv-emotion train` writes.")
    best_text = (f"Best epoch: {best} by {monitor} ({mode})." if best is not None
                 else f"No finite {monitor} in history.csv: the best epoch is not marked.")
    return f"<h2>Training</h2><p>{html.esc(best_text)}</p>{html.notes(notes)}{html.figures(items)}"


def _interval_html(metrics: Mapping[str, Any]) -> str:
    """:func:`~kerascv_emotion.reporting.tables.interval_note` as a muted paragraph, or nothing."""
    note = interval_note(metrics)
    return f"<p class=\"muted\">{html.esc(note)}</p>" if note else ""


def _classification_section(run: Run, evaluation: Evaluation, writer: OutputWriter) -> str:
    metrics = evaluation.metrics
    names = class_names_of(metrics)
    _check_shapes(run, evaluation, names)
    y_true, y_prob = evaluation.predictions["y_true"], evaluation.predictions["y_prob"]
    split, n = evaluation.split, metrics.get("n", len(y_true))
    writer.text(_CLASSIFICATION_MD,
                classification_markdown(metrics, f"Classification report: {run.name} ({split}, n={n})"))
    writer.figure("classification_report", classification_report_figure(
        metrics, f"Classification report: {run.name} ({split})"), "Classification report")
    matrix = metrics["confusion_matrix"]
    items = [
        writer.figure("confusion_matrix", confusion_matrix_figure(matrix, names), "Confusion matrix, counts"),
        writer.figure("confusion_matrix_normalized", confusion_matrix_figure(matrix, names, normalize=True),
                      "Confusion matrix, each row divided by the number of true images of the class"),
        writer.figure("roc", roc_figure(y_true, y_prob, metrics), "One-vs-rest ROC curves"),
        writer.figure("precision_recall", precision_recall_figure(y_true, y_prob, metrics),
                      "One-vs-rest precision-recall curves"),
        writer.figure("per_class_bars", per_class_bars_figure(metrics), "Per-class precision, recall and F1"),
    ]
    return (f"<h2>Results on {html.esc(split)} ({html.esc(fmt(n))} images)</h2>"
            f"{html.table(['metric', 'value'], [(k, [v]) for k, v in summary_rows(metrics)])}"
            "<h3>Classification report</h3>"
            f"{html.table(['class', *REPORT_HEADERS], classification_report_rows(metrics), average_rows=3)}"
            f"{_interval_html(metrics)}{html.notes(metrics.get('notes') or [])}{html.figures(items)}"
            f"{_calibration_section(run, evaluation, writer)}{_gallery_section(run, evaluation, writer)}")


def _calibration_section(run: Run, evaluation: Evaluation, writer: OutputWriter) -> str:
    """How far the probabilities can be trusted: raw vs temperature-scaled figures and the
    reliability diagram (a note for a metrics JSON written before calibration existed)."""
    calibration = evaluation.metrics.get("calibration")
    if not calibration:
        return "<h3>Calibration</h3>" + html.notes([f"No calibration figures in this metrics.json (an older "
                                                    f"version wrote it): {evaluate_hint(run.path, evaluation.split)}."])
    temperature = calibration.get("temperature")
    fitted_for = calibration.get("temperature_tta", "none")  # absent from files written before per-TTA temperatures
    text = (f"Probabilities divided by the temperature {fmt(temperature)} fitted on the validation split "
            f"for {'one pass' if fitted_for == 'none' else f'tta={fitted_for}'} (RUN/calibration.json); "
            "the predicted classes are unchanged." if temperature is not None
            else "No temperature applied (none fitted, or --no-calibration).")
    mismatch = _temperature_mismatch(run, evaluation)
    if mismatch:
        text += f" Note: {mismatch}."
    figure = writer.figure("reliability", reliability_figure(calibration),
                           "Reliability diagram: accuracy per confidence bin, before and after temperature scaling")
    return (f"<h3>Calibration</h3><p>{html.esc(text)}</p>"
            f"{html.table(['measure', 'raw', 'calibrated'], calibration_rows(calibration))}{html.figures([figure])}")


def _temperature_mismatch(run: Run, evaluation: Evaluation) -> str | None:
    """The sentence ``evaluate`` stored as ``calibration.mismatch`` when the temperature was fitted
    for other outputs than the evaluation's TTA. A metrics.json written before that field existed
    holds the sentence among its notes (shown above the section) when it has ``temperature_tta``;
    without that too, its temperature was fitted without TTA (per-TTA temperatures came later)."""
    calibration = evaluation.metrics["calibration"]
    if "mismatch" in calibration:
        return calibration["mismatch"]
    if "temperature_tta" in calibration or calibration.get("temperature") is None:
        return None
    return temperature_mismatch("none", evaluation.metrics.get("tta", "none"), run.path)


def _gallery_section(run: Run, evaluation: Evaluation, writer: OutputWriter) -> str:
    """Grad-CAM galleries from ``eval/<split>/gallery.npz`` (a note when it is missing)."""
    path = run.path / "eval" / evaluation.split / "gallery.npz"
    if not path.is_file():
        return "<h3>What the network looks at</h3>" + html.notes(
            [f"{path} not found: {evaluate_hint(run.path, evaluation.split)} to add the Grad-CAM galleries."])
    with np.load(path, allow_pickle=False) as data:
        gallery = {key: data[key] for key in data.files}
    names = class_names_of(evaluation.metrics)
    items = []
    for stem, build, caption in (
            ("gallery_classes", class_gallery_figure, "Per predicted class: the most confident right and wrong "
             "predictions, with the Grad-CAM heat map of the predicted class (red: what raised its score)"),
            ("gallery_confusions", confusion_gallery_figure,
             "The images behind the largest off-diagonal cells of the confusion matrix")):
        fig = build(gallery, names)
        if fig is not None:
            items.append(writer.figure(stem, fig, caption))
    return f"<h3>What the network looks at</h3>{html.figures(items)}"


def _regression_section(run: Run, evaluation: Evaluation, writer: OutputWriter) -> str:
    metrics = evaluation.metrics
    names = [str(name) for name in metrics.get("names") or run.class_names]
    _check_shapes(run, evaluation, names)
    y_true = np.asarray(evaluation.predictions["y_true"], dtype=float)
    y_pred = np.asarray(evaluation.predictions["y_pred"], dtype=float)
    split, n = evaluation.split, metrics.get("n", len(y_true))
    writer.text(_REGRESSION_MD,
                regression_markdown(metrics, f"Regression report: {run.name} ({split}, n={n})"))
    writer.figure("regression_metrics", regression_table_figure(metrics), "RMSE, CORR, SAGR and CCC")
    items = [
        writer.figure("va_scatter", va_scatter_figure(y_true, y_pred, names, metrics), "Predicted vs true"),
        writer.figure("circumplex", circumplex_figure(y_true, y_pred, names), "Valence-arousal plane"),
        writer.figure("error_histograms", error_histogram_figure(y_true, y_pred, names), "Error histograms"),
    ]
    return (f"<h2>Results on {html.esc(split)} ({html.esc(fmt(n))} images)</h2>"
            f"{html.table(['dimension', *REGRESSION_HEADERS], regression_rows(metrics), average_rows=1)}"
            f"{_interval_html(metrics)}{html.notes(metrics.get('notes') or [])}{html.figures(items)}")


def write_run_report(run_dir: str | os.PathLike, split: str = "test", out_dir: str | os.PathLike | None = None,
                     formats: Sequence[str] = ("png",)) -> Path:
    """Write figures, ``classification_report.md`` (``regression_report.md`` for regression
    runs) and ``report.html`` into ``out_dir`` (default ``RUN/report/``); returns the HTML path.

    ``split`` picks ``RUN/eval/<split>/``; a run not yet evaluated on it still gets its
    training curves and a note saying which command adds the rest, unless ``out_dir``
    already holds a report with evaluation results: that one is never replaced by a poorer
    one (DataError). ``formats``: figure file types among ``png``, ``svg``, ``pdf`` (the HTML
    always inlines PNG).
    """
    run = read_run(run_dir)
    folder = Path(out_dir) if out_dir is not None else run.path / "report"
    writer = OutputWriter(folder, check_formats(formats))
    evaluation = read_evaluation(run.path, split, run.task, required=False)
    if evaluation is None and any((folder / name).is_file() for name in _EVALUATED_MARKERS):
        raise DataError(f"{folder / 'report.html'} already shows evaluation results; a report without an "
                        f"evaluation on {split!r} would replace it: {evaluate_hint(run.path, split)}, "
                        "or write it elsewhere with --out")
    config = run.config
    facts = [("architecture", str(config.get("arch", "n/a"))), ("task", run.task),
             ("parameters", fmt_params(config.get("params"))), ("model size on disk", fmt_size(run.model_size))]
    if evaluation is not None:
        facts.append(("inference", fmt_speed(evaluation.metrics.get("inference"))))
        section = (_classification_section if run.task == "classification" else _regression_section)(
            run, evaluation, writer)
    else:
        section = html.notes([f"No evaluation on split '{split}' yet: {evaluate_hint(run.path, split)}. "
                              "This report shows the training curves only."])
    body = (f"<h1>Run report: {html.esc(run.name)}</h1>"
            f"<p class=\"subtitle\">{html.esc(str(run.path))}</p>"
            f"{html.table(['model', 'value'], [(k, [v]) for k, v in facts])}"
            f"{section}{_training_section(run, writer)}"
            f"<h2>Settings (config.json)</h2>{html.settings_table(config)}")
    return writer.text("report.html", html.page(f"Run report: {run.name}", body))
