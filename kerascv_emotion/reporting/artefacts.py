"""Read a run directory's saved artefacts (see ``docs/architecture.md``) for the reports.

Only numpy and the standard library: reporting never imports TensorFlow.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kerascv_emotion.errors import DataError
from kerascv_emotion.runs import CONFIG, MEMBERS_KEY, MODEL
from kerascv_emotion.tasks import default_monitor, monitor_mode

TRAIN_HINT = "run `kerascv-emotion train` (or `tune`) to create the run"


def evaluate_hint(run_dir: Path, split: str) -> str:
    """The command that writes ``RUN/eval/<split>/``."""
    return f"run `kerascv-emotion evaluate {run_dir} --split {split}` first"


def _read_json(path: Path, hint: str) -> Any:
    if not path.is_file():
        raise DataError(f"{path} not found; {hint}")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON ({err}); {hint}") from err


def _to_float(text: str | None) -> float:
    """A CSV cell as a float; ``""``, ``NA`` and other non-numbers are NaN."""
    try:
        return float(text) if text is not None else math.nan
    except ValueError:
        return math.nan


@dataclass
class History:
    """``history.csv``: ``epochs`` (E,) int (0-based, global across phases), ``phases``
    (E,) phase names, ``columns`` name -> (E,) float with NaN where a value is missing."""

    epochs: np.ndarray
    phases: list[str]
    columns: dict[str, np.ndarray]

    def segments(self) -> list[tuple[str, int, int]]:
        """Contiguous phases as ``(name, first_epoch, last_epoch)`` (inclusive)."""
        out: list[tuple[str, int, int]] = []
        for epoch, phase in zip(self.epochs.tolist(), self.phases, strict=True):
            if out and out[-1][0] == phase:
                out[-1] = (phase, out[-1][1], epoch)
            else:
                out.append((phase, epoch, epoch))
        return out

    def has_tuning_phases(self) -> bool:
        """True for runs with phases other than a single plain ``train`` phase."""
        segments = self.segments()
        return len(segments) > 1 or (bool(segments) and segments[0][0] != "train")


def read_history(path: Path) -> History:
    """Parse ``history.csv``; rows are sorted by epoch."""
    if not path.is_file():
        raise DataError(f"{path} not found; {TRAIN_HINT}")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "epoch" not in rows[0]:
        raise DataError(f"{path} has no epochs (no rows or no 'epoch' column); {TRAIN_HINT}")
    try:
        rows.sort(key=lambda row: int(row["epoch"]))
        epochs = np.array([int(row["epoch"]) for row in rows], dtype=np.int64)
    except (TypeError, ValueError) as err:
        raise DataError(f"{path} has a non-integer 'epoch' value ({err}); {TRAIN_HINT}") from err
    names = [key for key in rows[0] if key not in ("epoch", "phase")]
    columns = {name: np.array([_to_float(row.get(name)) for row in rows]) for name in names}
    phases = [row.get("phase") or "train" for row in rows]
    return History(epochs=epochs, phases=phases, columns=columns)


def read_metrics_log(path: Path) -> list[dict[str, Any]]:
    """``metrics_log.jsonl``: one record per epoch, sorted by ``epoch``."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(f"{path} line {number} is not valid JSON ({err}); {TRAIN_HINT}") from err
    return sorted(records, key=lambda record: int(record["epoch"]))


def monitor_of(config: dict[str, Any], task: str) -> tuple[str, str]:
    """``(metric, mode)`` that picked the best epoch: ``config["monitor"]`` or the task default."""
    name = config.get("monitor") or default_monitor(task)
    return name, monitor_mode(name)


@dataclass
class Evaluation:
    """``RUN/eval/<split>/``: the metrics JSON and the arrays of ``predictions.npz``."""

    split: str
    metrics: dict[str, Any]
    predictions: dict[str, np.ndarray]


def read_evaluation(run_dir: Path, split: str, task: str, required: bool) -> Evaluation | None:
    """Load ``eval/<split>/``; ``None`` when neither file exists and ``required`` is False."""
    folder = run_dir / "eval" / split
    metrics_path, npz_path = folder / "metrics.json", folder / "predictions.npz"
    hint = evaluate_hint(run_dir, split)
    if not required and not metrics_path.exists() and not npz_path.exists():
        return None
    metrics = _read_json(metrics_path, hint)
    if not npz_path.is_file():
        raise DataError(f"{npz_path} not found; {hint}")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as err:
        raise DataError(f"{npz_path} cannot be read ({err}); {hint}") from err
    classification = task == "classification"
    missing = [key for key in (("per_class", "confusion_matrix") if classification else ("per_dim",))
               if key not in metrics]
    if missing:
        raise DataError(f"{metrics_path} lacks {missing} for a {task} run; {hint}")
    missing = [key for key in ("y_true", "y_prob" if classification else "y_pred") if key not in arrays]
    if missing:
        raise DataError(f"{npz_path} lacks {missing} for a {task} run; {hint}")
    if classification and arrays["y_prob"].ndim == 2 and arrays["y_prob"].shape[1] == 1:
        positive = arrays["y_prob"][:, 0]
        arrays["y_prob"] = np.stack([1.0 - positive, positive], axis=1)  # sigmoid -> two columns
    return Evaluation(split=split, metrics=metrics, predictions=arrays)


@dataclass
class Run:
    """A run directory's training artefacts. ``history`` is ``None`` for an ensemble
    (:mod:`kerascv_emotion.ensemble`: ``config["members"]``); ``records`` is ``None`` without a
    ``metrics_log.jsonl``; ``model_size`` is ``model.keras``'s size in bytes or ``None``;
    ``exports``: ``export/<variant>/export.json`` by variant (e.g. ``litert-int8``), sorted."""

    path: Path
    config: dict[str, Any]
    class_names: list[str]
    task: str
    history: History | None
    records: list[dict[str, Any]] | None
    model_size: int | None
    exports: dict[str, dict[str, Any]]

    @property
    def name(self) -> str:
        """The run folder's name (also for relative paths such as ``.``)."""
        return self.path.resolve().name

    @property
    def monitor(self) -> tuple[str, str]:
        """``(metric, mode)`` of the best epoch."""
        return monitor_of(self.config, self.task)

    def best_epoch(self) -> int | None:
        """The epoch ``model.keras`` was saved at, as training recorded it in ``config.json``
        (``None`` when the monitored value was never finite)."""
        return self.config.get("best_epoch")


def read_run(run_dir: str | os.PathLike) -> Run:
    """Load ``config.json``, ``class_names.json``, ``history.csv`` and (if present)
    ``metrics_log.jsonl``, the size of ``model.keras`` and the ``export.json`` files of
    ``kerascv-emotion export``; a missing required file
    raises :class:`DataError` naming it and the command that makes it."""
    path = Path(run_dir)
    if not path.is_dir():
        raise DataError(f"run directory {path} not found; {TRAIN_HINT}")
    config = _read_json(path / CONFIG, TRAIN_HINT)
    class_names = [str(name) for name in _read_json(path / "class_names.json", TRAIN_HINT)]
    task = config.get("task", "classification")
    history = None if MEMBERS_KEY in config else read_history(path / "history.csv")  # an ensemble is not trained
    log_path = path / "metrics_log.jsonl"
    records = read_metrics_log(log_path) if log_path.is_file() else None
    model_path = path / MODEL
    model_size = model_path.stat().st_size if model_path.is_file() else None
    exports = {report.parent.name: _read_json(report, "run `kerascv-emotion export` again")
               for report in sorted(path.glob("export/*/export.json"))}
    return Run(path=path, config=config, class_names=class_names, task=task, history=history,
               records=records, model_size=model_size, exports=exports)
