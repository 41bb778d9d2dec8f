"""Presets: trained models shipped as package data, each with a model card, so that
``predict`` and :class:`~kerascv_emotion.recognizer.EmotionRecognizer` work without a run folder.

A preset is ``PRESETS/<name>/`` with ``model.keras`` and ``config.json`` copied from a finished,
evaluated run (so it loads exactly as that run does, :func:`~kerascv_emotion.runs.read_config`)
and ``card.json``, written by :func:`build_preset` from the run's ``config.json``, its
``eval/val/metrics.json`` and the index's ``.meta.json``: never edited by hand. ``PRESETS`` is
``kerascv_emotion/assets/presets/`` inside the installed package, or ``$KERASCV_EMOTION_PRESETS``
where that is set (tests, or presets kept elsewhere).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kerascv_emotion.data.index import meta_path
from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.io import atomic_path, read_json, write_json
from kerascv_emotion.runs import CALIBRATION, CONFIG, MODEL, eval_dir, read_config

PRESETS_ENV = "KERASCV_EMOTION_PRESETS"
CARD = "card.json"
CARD_FORMAT = "kerascv_emotion.preset/1"
DEFAULT_PRESET = "fer2013"
"""The preset ``predict`` and ``EmotionRecognizer.from_preset()`` use when none is named."""
CARD_SPLIT = "val"
"""The split whose evaluation a card quotes (the test split stays unseen for model choice)."""
_PACKAGE_PRESETS = Path(__file__).parent / "assets" / "presets"


def presets_dir() -> Path:
    """Where presets live: ``$KERASCV_EMOTION_PRESETS`` if set, else the package's ``assets/presets/``."""
    return Path(os.environ[PRESETS_ENV]) if os.environ.get(PRESETS_ENV) else _PACKAGE_PRESETS


def list_presets() -> dict[str, dict[str, Any]]:
    """Every preset's card, by name, in name order (folders without a card are not presets)."""
    root = presets_dir()
    if not root.is_dir():
        return {}
    return {folder.name: read_json(folder / CARD) for folder in sorted(root.iterdir())
            if (folder / CARD).is_file() and (folder / MODEL).is_file()}


def preset_dir(name: str = DEFAULT_PRESET) -> Path:
    """The folder of preset ``name``; a one-line DataError naming the presets there are."""
    folder = presets_dir() / name
    if not ((folder / CARD).is_file() and (folder / MODEL).is_file() and (folder / CONFIG).is_file()):
        there = sorted(list_presets())
        raise DataError(f"no preset {name!r} in {presets_dir()} (presets there: {there or 'none'}); "
                        "give --run RUN, or build one with `kerascv-emotion build-preset`")
    return folder


def preset_detects_faces(folder: str | os.PathLike) -> bool:
    """Whether the preset in ``folder`` takes face crops (its card's ``input.faces``)."""
    return bool(read_json(Path(folder) / CARD)["input"]["faces"])


def _interval(block: dict[str, Any]) -> dict[str, float]:
    return {"estimate": block["estimate"], "low": block["low"], "high": block["high"]}


def _int8_export(run_dir: Path) -> dict[str, Any] | None:
    """The size, single-image latency and validation accuracy of ``RUN``'s int8 LiteRT export
    (``kerascv-emotion export RUN --format litert --quantize int8``), or None without one."""
    from kerascv_emotion.export import export_dir

    path = export_dir(run_dir, "litert", "int8") / "export.json"
    if not path.is_file():
        return None
    report = read_json(path)
    keys = ("size_bytes", "runtime", "latency", "passed", "criterion", "export_accuracy", "keras_accuracy",
            "top1_agreement", "export_rmse", "keras_rmse", "compared_on")
    return {"format": "LiteRT int8", **{key: report[key] for key in keys if key in report}}


def make_card(run_dir: str | os.PathLike, name: str, data_licence: str, train_command: str, commit: str,
              faces: bool = True, notes: Sequence[str] = ()) -> dict[str, Any]:
    """The model card of a preset built from ``run_dir``: what it predicts and from what input
    (``faces``: face crops, so ``predict`` detects faces first; else whole images),
    what it was trained on and how (the run's settings, plus ``train_command`` and ``commit``,
    which a run folder does not record), and its validation figures with their bootstrap
    intervals (:data:`CARD_SPLIT`), and its int8 LiteRT export's size, latency and accuracy
    where the run has one (:func:`_int8_export`). DataError if the run has not been evaluated on that split
    with bootstrap intervals."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    metrics_path = eval_dir(run_dir, CARD_SPLIT) / "metrics.json"
    if not metrics_path.is_file():
        raise DataError(f"{run_dir} has no {metrics_path.relative_to(run_dir)}; run `kerascv-emotion evaluate "
                        f"{run_dir} --split {CARD_SPLIT}` first")
    metrics = read_json(metrics_path)
    if "bootstrap" not in metrics:
        raise DataError(f"{metrics_path} has no bootstrap intervals; evaluate with --bootstrap 1000")
    task = config.get("task", "classification")
    if task == "classification":
        boot = metrics["bootstrap"]
        validation = {"accuracy": _interval(boot["accuracy"]), "macro_f1": _interval(boot["macro_f1"])}
    else:
        validation = {"mean": metrics["mean"], "bootstrap": metrics["bootstrap"]}
    index_path = Path(config["index"])
    meta = read_json(meta_path(index_path)) if meta_path(index_path).is_file() else {}
    settings = {k: v for k, v in config.items()
                if k not in ("class_names", "output_names", "samples", "versions", "devices", "params",
                             "phases", "best_epoch", "best_value")}
    return {
        "format": CARD_FORMAT,
        "name": name,
        "task": task,
        "classes": list(config["output_names"]),
        "input": {"faces": faces, "image_size": config["image_size"], "channels": config["channels"],
                  "scaling": "uint8 / 255", "resize": "bilinear stretch of the " + ("face box" if faces else "image")},
        "architecture": config.get("arch"),
        "params": config.get("params"),
        "size_bytes": None,  # build_preset: the bundled model file's
        "training": {
            "data": meta.get("meta", {}).get("source"),
            "reader": meta.get("meta", {}).get("reader"),
            "index": str(index_path),
            "images": config.get("samples"),
            "counts": meta.get("counts"),
            "data_licence": data_licence,
            "command": train_command,
            "commit": commit,
            "settings": settings,
            "best_epoch": config.get("best_epoch"),
            "phases": config.get("phases"),
            "versions": config.get("versions"),
        },
        "validation": {"split": CARD_SPLIT, "images": metrics.get("n"), "tta": metrics.get("tta", "none"),
                       **validation, "without_tta": metrics.get("without_tta"),
                       "intervals": {"method": "percentile bootstrap",
                                     "confidence": metrics["bootstrap"].get("confidence"),
                                     "resamples": metrics["bootstrap"].get("n_resamples")}},
        "inference": metrics.get("inference"),
        "int8": _int8_export(run_dir),
        "run": run_dir.resolve().name,
        "notes": list(notes),
    }


def _save_for_inference(source: Path, target: Path) -> None:
    """Save the model of ``source`` without its optimizer state (a third of the file for
    Adam), as the ``.keras`` file ``target``."""
    from kerascv_emotion.runs import load_model

    load_model(source, compile=False).save(target)


def build_preset(run_dir: str | os.PathLike, name: str, data_licence: str, train_command: str, commit: str,
                 faces: bool = True, notes: Sequence[str] = (), root: str | os.PathLike | None = None,
                 replace: bool = False) -> Path:
    """Copy ``RUN/model.keras`` (without its optimizer state), ``config.json`` and
    ``calibration.json`` (if any) into ``ROOT/<name>/`` (``root`` defaults to
    :func:`presets_dir`) beside the card :func:`make_card` writes; returns the folder. An
    existing preset is replaced only with ``replace``."""
    if not name or name.startswith(".") or "/" in name or os.sep in name:
        raise ConfigError(f"preset name {name!r}: use a plain folder name such as {DEFAULT_PRESET!r}")
    run_dir = Path(run_dir)
    card = make_card(run_dir, name, data_licence, train_command, commit, faces, notes)
    folder = Path(root or presets_dir()) / name
    if folder.exists() and not replace:
        raise DataError(f"preset {folder} exists; give --replace to overwrite it")
    folder.mkdir(parents=True, exist_ok=True)
    for file in (CONFIG, CALIBRATION):
        if (run_dir / file).is_file():
            with atomic_path(folder / file) as tmp:
                shutil.copyfile(run_dir / file, tmp)
    with atomic_path(folder / MODEL) as tmp:
        _save_for_inference(run_dir / MODEL, tmp)
    card["size_bytes"] = (folder / MODEL).stat().st_size
    write_json(folder / CARD, card)
    return folder
