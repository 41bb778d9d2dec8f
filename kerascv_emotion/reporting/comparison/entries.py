"""The runs a comparison reads (:class:`Entry`: name, artefacts, evaluation on the split),
the facts gathered from them (per-class scores, exported variants) and the notes on them
(different data or devices, missing timings, each run's own notes)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.reporting.artefacts import (
    TRAIN_HINT,
    Evaluation,
    Run,
    read_evaluation,
    read_run,
)
from kerascv_emotion.reporting.tables import NA, as_float, class_names_of
from kerascv_emotion.runs import MEMBERS_KEY, MODEL


@dataclass
class Entry:
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


def export_variants(entries: Sequence[Entry]) -> list[str]:
    """Exported variants (``RUN/export/<variant>/``, e.g. ``litert-int8``) of any run, sorted."""
    return sorted({variant for entry in entries for variant in entry.run.exports})


def export_size(variant: str) -> Callable[[Entry], Any]:
    """A run's exported ``variant`` file size in bytes (``None`` where not exported)."""
    return lambda entry: (entry.run.exports.get(variant) or {}).get("size_bytes")


def export_latency(variant: str) -> Callable[[Entry], Any]:
    """A run's exported ``variant`` median single-image latency in ms (``None`` where unknown)."""
    return lambda entry: ((entry.run.exports.get(variant) or {}).get("latency") or {}).get("ms_median")


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


def per_class_matrix(entries: Sequence[Entry], key: str = "f1") -> tuple[list[str], np.ndarray]:
    """Classes of all runs (first-seen order) and ``per_class[cls][key]`` as a (C, M) array,
    NaN where a run lacks the class or the value is undefined."""
    classes: list[str] = []
    for entry in entries:
        classes += [name for name in class_names_of(entry.metrics) if name not in classes]
    values = np.array([[as_float((entry.metrics["per_class"].get(name) or {}).get(key)) for entry in entries]
                       for name in classes])
    return classes, values


_DATA_FACTS: dict[str, Callable[[Entry], str]] = {
    "index": lambda e: str(e.metrics.get("index") or e.run.config.get("index", NA)),
    "split": lambda e: str(e.metrics.get("split") or e.evaluation.split),
    "classes": lambda e: ", ".join(str(c) for c in e.run.config.get("class_names") or e.run.class_names),
    "image count": lambda e: str(e.metrics.get("n", NA)),
}
"""What the runs were evaluated on; runs that differ in any of these are not comparable."""


def data_differences(entries: Sequence[Entry]) -> list[str]:
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
    return data_differences(load_entries(run_dirs, split, None))


def run_notes(entries: Sequence[Entry]) -> list[str]:
    """The notes of a comparison page: :func:`data_differences`, inference timings measured on
    different devices or missing, what the export columns mean, and each run's own notes."""
    devices = {str(entry.inference.get("device")) for entry in entries if entry.inference}
    notes = data_differences(entries)
    if len(devices) > 1:
        notes.append(f"Inference speeds were measured on different devices ({', '.join(sorted(devices))}); "
                     "compare them with care.")
    missing = [entry.name for entry in entries if not entry.inference]
    if missing:
        notes.append(f"No inference timing in metrics.json for {', '.join(missing)}: re-run "
                     "`kerascv-emotion evaluate` to measure it.")
    if export_variants(entries):
        notes.append("Exported files (`kerascv-emotion export`): size on disk and single-image latency on 1 CPU "
                     "thread (median after warm-up), measured on the machine that exported them; n/a: not exported "
                     "or exported before latency was measured.")
    for entry in entries:
        members = entry.run.config.get(MEMBERS_KEY)
        if members:
            listing = ", ".join(f"{Path(m['run']).name} ({m['weight']:.2f})" for m in members)
            notes.append(f"{entry.name}: an ensemble, the weighted mean of {listing}.")
        notes += [f"{entry.name}: {note}" for note in entry.metrics.get("notes") or []]
    return notes


def load_entries(run_dirs: Sequence[str | os.PathLike], split: str, names: Sequence[str] | None) -> list[Entry]:
    """The runs in ``run_dirs`` with their evaluation on ``split``, all of one task; ``names``
    labels them (default: the folders' names)."""
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise ConfigError("no runs to compare; give at least one run directory")
    entries = []
    for name, path in zip(_display_names(paths, names), paths, strict=True):
        run = read_run(path)
        if run.model_size is None:
            raise DataError(f"{path / MODEL} not found; {TRAIN_HINT}")
        evaluation = read_evaluation(run.path, split, run.task, required=True)
        assert evaluation is not None  # required=True raises instead of returning None
        entries.append(Entry(name=name, run=run, evaluation=evaluation))
    tasks = {entry.run.task for entry in entries}
    if len(tasks) > 1:
        listing = ", ".join(f"{entry.name} ({entry.run.task})" for entry in entries)
        raise ConfigError(f"runs of different tasks cannot be compared: {listing}; compare one task at a time")
    return entries


