"""Print a Markdown table of evaluated runs: one row per saved ``metrics.json`` (``evaluate``'s),
with plain and TTA accuracy, macro F1 (95 % bootstrap interval), per-class recall, the run's
best epoch, its mean epoch seconds and its summed epoch time in minutes (``history.csv``'s
``epoch_seconds``: the epochs' own time, without set-up and evaluation; ``n/a`` unless every
epoch has one).

    python benchmarks/runs_table.py RUN/eval/val/metrics.json OTHER.metrics-hflip.json ...

A metrics file outside its run folder is matched to ``<name>/`` beside it (``<name>.metrics-*.json``).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def _run_dir(metrics_path: Path) -> Path:
    if metrics_path.name == "metrics.json":
        return metrics_path.parents[2]
    return metrics_path.parent / metrics_path.name.split(".metrics-")[0]


def _interval(entry: dict) -> str:
    return f"{entry['estimate']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"


def row(metrics_path: Path) -> str:
    """One Markdown table row for ``metrics_path``."""
    metrics = json.loads(metrics_path.read_text())
    run = _run_dir(metrics_path)
    boot = metrics.get("bootstrap") or {}
    accuracy = _interval(boot["accuracy"]) if "accuracy" in boot else f"{metrics['accuracy']:.3f}"
    macro_f1 = _interval(boot["macro_f1"]) if "macro_f1" in boot else f"{metrics['macro_avg']['f1']:.3f}"
    plain = metrics.get("without_tta", {}).get("accuracy", metrics["accuracy"])
    recall = ", ".join(f"{metrics['per_class'][c]['recall']:.2f}" for c in metrics["class_names"])
    seconds, minutes, best = "", "", ""
    history = run / "history.csv"
    if history.is_file():
        with history.open(newline="") as f:
            rows = list(csv.DictReader(f))
        times = [float(r["epoch_seconds"]) for r in rows if r.get("epoch_seconds")]
        seconds = f"{sum(times) / len(times):.0f}" if times else "n/a"
        minutes = f"{sum(times) / 60:.1f}" if times and len(times) == len(rows) else "n/a"
    config = run / "config.json"
    if config.is_file():
        best = str(json.loads(config.read_text()).get("best_epoch"))
    return (f"| {run.name} | {metrics.get('tta', 'none')} | {plain:.3f} | {accuracy} | {macro_f1} | {recall} "
            f"| {best} | {seconds} | {minutes} |")


def main(paths: list[str]) -> None:
    print("| run | tta | accuracy, plain | accuracy, tta [95 % CI] | macro F1 [95 % CI] | recall per class "
          "| best epoch (0-based) | mean epoch s | epochs' min |")
    print("|---|---|---:|---|---|---|---:|---:|---:|")
    for path in paths:
        print(row(Path(path)))


if __name__ == "__main__":
    main(sys.argv[1:])
