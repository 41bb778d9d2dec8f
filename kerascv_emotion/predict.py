"""Predict with a finished run on any photos: files, folders (recursive) or glob patterns;
the whole image or each detected face (:mod:`kerascv_emotion.faces`); one CSV row per image
or face.

Images are decoded and resized exactly as training decodes them
(:func:`~kerascv_emotion.data.images.open_image` then
:func:`~kerascv_emotion.data.images.prepare_image`, at the run's ``image_size`` and
``channels``, scaled to 0..1); files that cannot be decoded are skipped and listed, as
training's ``on_bad_image="skip"`` does.

CSV columns: ``path`` (as found), ``face`` (0, 1, ... within the image, left to right),
``face_x, face_y, face_w, face_h`` (the box classified, pixels of the upright image; the
whole image without ``detect_faces``), then ``label``, ``probability`` and ``prob_<class>``
for every class, or ``valence, arousal`` for a regression run.
"""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kerascv_emotion.data.folders import IMAGE_EXTENSIONS, natural_key
from kerascv_emotion.errors import BadImageError, DataError
from kerascv_emotion.faces import DEFAULT_MARGIN, Box
from kerascv_emotion.io import atomic_open, atomic_path
from kerascv_emotion.runs import read_config
from kerascv_emotion.temperature import load_run_model

_GLOB_CHARS = frozenset("*?[")


@dataclass
class Predictions:
    """What :func:`predict` found.

    ``task``: the run's; ``rows``: one dict per image or face (the CSV columns); ``skipped``:
    one ``{"path", "reason"}`` per file left out; ``no_face``: images in which no face was found.
    """

    task: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)


def _walk(folder: Path, skipped: list[dict[str, str]]) -> Iterator[str]:
    """Files below ``folder`` (recursive, natural order, hidden ones left out); files without
    an image extension are listed in ``skipped``."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=natural_key)
        for name in sorted((f for f in filenames if not f.startswith(".")), key=natural_key):
            path = os.path.join(dirpath, name)
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                yield path
            else:
                skipped.append({"path": path, "reason": f"not an image extension ({Path(name).suffix or 'none'})"})


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[str], list[dict[str, str]]]:
    """The image files named by ``inputs`` (files, folders searched recursively, glob
    patterns with ``**``), each once, in order, and the files of folders left out for their
    extension. A path that does not exist, or a pattern that matches nothing, is a DataError."""
    files: list[str] = []
    skipped: list[dict[str, str]] = []
    for item in map(os.fspath, inputs):
        if os.path.isdir(item):
            files += _walk(Path(item), skipped)
        elif os.path.exists(item) or os.path.islink(item):
            files.append(item)
        elif _GLOB_CHARS & set(item):
            matches = sorted(glob.glob(item, recursive=True), key=natural_key)
            if not matches:
                raise DataError(f"input pattern {item!r} matches no file")
            for match in matches:
                files += _walk(Path(match), skipped) if os.path.isdir(match) else [match]
        else:
            raise DataError(f"input {item} does not exist")
    if not files and not skipped:
        raise DataError("no input images given")
    return list(dict.fromkeys(files)), skipped


def _columns(task: str, output_names: Sequence[str]) -> list[str]:
    head = ["path", "face", "face_x", "face_y", "face_w", "face_h"]
    if task == "classification":
        return head + ["label", "probability"] + [f"prob_{name}" for name in output_names]
    return head + list(output_names)


def _row(path: str, face: int, box: Box, output: np.ndarray, task: str, names: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"path": path, "face": face, "face_x": box[0], "face_y": box[1],
                           "face_w": box[2], "face_h": box[3]}
    if task == "classification":
        top = int(np.argmax(output))
        row.update(label=names[top], probability=float(output[top]))
        row.update({f"prob_{name}": float(p) for name, p in zip(names, output, strict=True)})
    else:
        row.update({name: float(v) for name, v in zip(names, output, strict=True)})
    return row


def row_label(row: dict[str, Any], task: str) -> str:
    """A short text for a row: ``"anger 0.87"`` or ``"v +0.31 a -0.12"``."""
    if task == "classification":
        return f"{row['label']} {row['probability']:.2f}"
    return f"v {row['valence']:+.2f} a {row['arousal']:+.2f}"


def predict(run_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike], detect_faces: bool = False,
            margin: float = DEFAULT_MARGIN, batch_size: int = 32, max_pixels: int | None = None,
            progress: bool = True, calibrate: bool = True) -> Predictions:
    """Predict every image (or, with ``detect_faces``, every face) named by ``inputs``
    (:func:`collect_inputs`) with ``RUN/model.keras``, ``batch_size`` crops at a time.

    ``margin``: each detected box grows by this fraction of its side on every side.
    ``max_pixels`` defaults to the run's own setting. A progress bar goes to stderr.
    Probabilities are divided by the run's temperature unless ``calibrate`` is off
    (:mod:`kerascv_emotion.temperature`).
    """
    from kerascv_emotion.data.cache import Progress
    from kerascv_emotion.data.images import open_image, prepare_image
    from kerascv_emotion.faces import find_faces

    config = read_config(run_dir)
    task = config.get("task", "classification")
    names = list(config["output_names"])
    size, channels = int(config["image_size"]), int(config["channels"])
    max_pixels = max_pixels or config.get("max_pixels")
    files, skipped = collect_inputs(inputs)
    model, _ = load_run_model(run_dir, calibrate)
    result = Predictions(task, _columns(task, names), skipped=skipped)
    batch: list[np.ndarray] = []
    where: list[tuple[str, int, Box]] = []

    def flush() -> None:
        if not batch:
            return
        x = np.stack(batch).astype(np.float32) / np.float32(255.0)
        outputs = np.asarray(model.predict_on_batch(x), dtype=np.float64)
        result.rows.extend(_row(p, f, b, out, task, names) for (p, f, b), out in zip(where, outputs, strict=True))
        batch.clear()
        where.clear()

    bar = Progress("predict", len(files), progress)
    for done, path in enumerate(files, start=1):
        try:
            img = open_image(path, max_pixels)
            boxes = find_faces(img, margin) if detect_faces else [(0, 0, img.width, img.height)]
            crops = [prepare_image(img, path, size, channels, box) for box in boxes]
        except BadImageError as exc:
            result.skipped.append({"path": path, "reason": exc.reason})
            bar.update(done)
            continue
        if not boxes:
            result.no_face.append(path)
        for face, (box, crop) in enumerate(zip(boxes, crops, strict=True)):
            batch.append(crop)
            where.append((path, face, box))
        if len(batch) >= batch_size:
            flush()
        bar.update(done)
    flush()
    return result


def write_csv(path: str | os.PathLike, result: Predictions) -> Path:
    """Write ``result.rows`` as CSV atomically (probabilities with 6 decimals)."""
    path = Path(path)
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=result.columns)
        writer.writeheader()
        for row in result.rows:
            writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})
    return path


def write_annotated(folder: str | os.PathLike, result: Predictions, max_pixels: int | None = None,
                    explainer: Any = None) -> list[Path]:
    """Write ``FOLDER/<name>.png``, a copy of each image with rows, its boxes and labels drawn
    (a repeated name gets ``-2``, ``-3``, ...); returns the files written. With ``explainer``
    (a :class:`kerascv_emotion.explain.GradCam`) each box shows the heat map of its predicted class."""
    from kerascv_emotion.data.images import open_image
    from kerascv_emotion.faces import annotate

    by_path: dict[str, list[dict[str, Any]]] = {}
    for row in result.rows:
        by_path.setdefault(row["path"], []).append(row)
    written: list[Path] = []
    used: set[str] = set()
    for path, rows in by_path.items():
        stem, n = Path(path).stem, 1
        while (name := f"{stem}.png" if n == 1 else f"{stem}-{n}.png") in used:
            n += 1
        used.add(name)
        boxes = [(r["face_x"], r["face_y"], r["face_w"], r["face_h"]) for r in rows]
        image = open_image(path, max_pixels)
        if explainer is not None:
            image = explainer.overlay(image, path, boxes, [r["label"] for r in rows])
        image = annotate(image, boxes, [row_label(r, result.task) for r in rows])
        with atomic_path(Path(folder) / name) as tmp:
            image.save(tmp, format="PNG")
        written.append(Path(folder) / name)
    return written
