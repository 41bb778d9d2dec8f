"""Predict with a finished run on any photos: files, folders (recursive) or glob patterns;
the whole image or each detected face (:mod:`kerascv_emotion.face_detection`); one CSV row per image
or face.

A video file among the inputs (:data:`VIDEO_EXTENSIONS`, anything OpenCV's ``VideoCapture``
reads) is sampled every ``every`` seconds (the first frame at or after 0, every, 2 x every, ...);
its rows carry the frame's time in ``time_s`` (a column only when a video is among the inputs).

Images are decoded and resized exactly as training decodes them
(:func:`~kerascv_emotion.data.images.open_image` then
:func:`~kerascv_emotion.data.images.prepare_image`, at the run's ``image_size`` and
``channels``, scaled to 0..1 by :func:`~kerascv_emotion.inference.to_input`); files that
cannot be decoded are skipped and listed, as training's ``on_bad_image="skip"`` does.

CSV columns: ``path`` (as found), ``face`` (0, 1, ... within the image, left to right),
``face_x, face_y, face_w, face_h`` (the box classified, pixels of the upright image; the
whole image without ``detect_faces``), with the yunet detector ``face_score`` and the five
landmarks ``<point>_x, <point>_y`` (:data:`~kerascv_emotion.face_detection.LANDMARK_NAMES`), then
``label``, ``probability`` and ``prob_<class>`` for every class, or ``valence, arousal`` for
a regression run.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from kerascv_emotion.data.files import IMAGE_EXTENSIONS, is_utf8, natural_key, walk_files
from kerascv_emotion.errors import BadImageError, ConfigError, DataError
from kerascv_emotion.face_detection import DEFAULT_DETECTOR, DEFAULT_MARGIN, LANDMARK_NAMES, Face
from kerascv_emotion.inference import predict_batches
from kerascv_emotion.io import atomic_open, atomic_path
from kerascv_emotion.runs import MODEL, read_config
from kerascv_emotion.temperature import load_run_model

log = logging.getLogger(__name__)

_GLOB_CHARS = frozenset("*?[")
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
DEFAULT_EVERY = 1.0
"""Seconds between the frames of a video that are predicted."""
Frame = tuple[str, "float | None", "Image.Image | BadImageError"]
"""``(path, time in seconds within a video or None for a photo, upright image or the error
that kept it from being decoded)``."""


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video extension (:data:`VIDEO_EXTENSIONS`)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


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

    def input_files(self) -> set[Path]:
        """Every input file :func:`predict` met (predicted, skipped or without a face), resolved."""
        return resolved([*(row["path"] for row in self.rows), *(item["path"] for item in self.skipped),
                         *self.no_face])

    def records(self) -> dict[str, list[dict[str, Any]]]:
        """The rows as records by path (an image without a face maps to ``[]``; a skipped file
        is absent), each: ``time`` (seconds into a video; only when a video was among the
        inputs), ``box`` ``(x, y, w, h)``, ``landmarks`` (five ``(x, y)``, or
        ``None``), ``score`` (the detector's, or ``None``), then ``label``, ``probability`` and
        ``probabilities`` (class -> probability), or ``valence``, ``arousal`` for a regression
        run."""
        out: dict[str, list[dict[str, Any]]] = {path: [] for path in self.no_face}
        lm_columns = _landmark_columns()
        for row in self.rows:
            points = [row.get(c) for c in lm_columns]
            record: dict[str, Any] = {
                **({"time": row["time_s"]} if "time_s" in row else {}),
                "box": (row["face_x"], row["face_y"], row["face_w"], row["face_h"]),
                "landmarks": None if points[0] is None else tuple(zip(points[::2], points[1::2], strict=True)),
                "score": row.get("face_score")}
            if self.task == "classification":
                record.update(label=row["label"], probability=row["probability"],
                              probabilities={c[len("prob_"):]: row[c] for c in self.columns if c.startswith("prob_")})
            else:
                record.update({c: row[c] for c in self.columns[self.columns.index("face_h") + 1:]
                               if c not in ("face_score", *lm_columns)})
            out.setdefault(row["path"], []).append(record)
        return out


def _walk(folder: str, skipped: list[dict[str, str]]) -> Iterator[str]:
    """Image and video files below ``folder`` (:func:`~kerascv_emotion.data.files.walk_files`:
    its order, hidden ones left out, the others it does not take listed in ``skipped``)."""
    return walk_files(folder, skipped, extensions=IMAGE_EXTENSIONS | VIDEO_EXTENSIONS, kind="an image or video")


def resolved(paths: Iterable[str]) -> set[Path]:
    """``paths`` as a set of absolute paths, links resolved (to compare outputs with inputs)."""
    return {Path(path).resolve() for path in paths}


class Inputs(NamedTuple):
    """What :func:`collect_inputs` found: ``files`` to predict, in order, and ``skipped``, one
    ``{"path", "reason"}`` per file of a folder left out."""

    files: list[str]
    skipped: list[dict[str, str]]

    def paths(self) -> set[Path]:
        """Every file found, to predict or skipped, resolved (:func:`resolved`)."""
        return resolved([*self.files, *(item["path"] for item in self.skipped)])


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> Inputs:
    """The image files named by ``inputs`` (files, folders searched recursively, glob
    patterns with ``**``), each once, in order, and the files of folders left out (for their
    extension, or as dangling links, FIFOs and other non-regular files). A path that does not
    exist, or a pattern that matches nothing, is a DataError."""
    files: list[str] = []
    skipped: list[dict[str, str]] = []
    for item in map(os.fspath, inputs):
        if os.path.isdir(item):
            files += _walk(item, skipped)
        elif os.path.exists(item) or os.path.islink(item):
            files.append(item)
        elif _GLOB_CHARS & set(item):
            matches = sorted(glob.glob(item, recursive=True), key=natural_key)
            if not matches:
                raise DataError(f"input pattern {item!r} matches no file")
            for match in matches:
                files += _walk(match, skipped) if os.path.isdir(match) else [match]
        else:
            raise DataError(f"input {item} does not exist")
    if not files and not skipped:
        given = ", ".join(map(os.fspath, inputs))
        raise DataError(f"{given}: no files found (folders are searched recursively, hidden files left out); "
                        f"give image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) or folders that hold them")
    return Inputs(list(dict.fromkeys(files)), skipped)


def _landmark_columns() -> list[str]:
    return [f"{point}_{axis}" for point in LANDMARK_NAMES for axis in "xy"]


def _columns(task: str, output_names: Sequence[str], landmarks: bool = False, times: bool = False) -> list[str]:
    head = ["path", *(["time_s"] if times else []), "face", "face_x", "face_y", "face_w", "face_h"]
    if landmarks:
        head += ["face_score", *_landmark_columns()]
    if task == "classification":
        return head + ["label", "probability"] + [f"prob_{name}" for name in output_names]
    return head + list(output_names)


def _row(path: str, time: float | None, face: int, found: Face, output: np.ndarray, task: str, names: Sequence[str],
         landmarks: bool = False, times: bool = False) -> dict[str, Any]:
    box = found.box
    row: dict[str, Any] = {"path": path, "face": face, "face_x": box[0], "face_y": box[1],
                           "face_w": box[2], "face_h": box[3]}
    if times:
        row["time_s"] = None if time is None else round(time, 3)
    if landmarks:
        row["face_score"] = found.score
        points = [v for point in found.landmarks or () for v in point]
        row.update(zip(_landmark_columns(), points or [None] * len(_landmark_columns()), strict=True))
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


def check_face_options(detect_faces: bool, detector: str, align: bool) -> None:
    """ConfigError for options that cannot go together (``align`` needs yunet's landmarks)."""
    if align and not (detect_faces and detector == "yunet"):
        raise ConfigError("--align levels the eyes from yunet's landmarks: give it with --detect-faces "
                          "and --detector yunet")


def predict_frames(model: Any, config: dict[str, Any], frames: Iterable[Frame], total: int,
                   detect_faces: bool = False, margin: float = DEFAULT_MARGIN, detector: str = DEFAULT_DETECTOR,
                   align: bool = False, batch_size: int = 32, skipped: Sequence[dict[str, str]] = (),
                   progress: bool = True, times: bool = False, source: str = "the model") -> Predictions:
    """Predict each of ``frames`` (:data:`Frame`: photos, and the sampled frames of videos) with
    ``model`` and its run's ``config``: the whole image, or with ``detect_faces`` every face
    ``detector`` finds (:func:`~kerascv_emotion.face_detection.find_faces`), each crop prepared as
    training prepares images, ``batch_size`` crops per model call. ``align`` levels each face's
    eye line first. ``total``: the number of files (for the progress bar); ``skipped``: files
    already left out; ``times``: rows get the ``time_s`` column; ``source``: the model's file,
    named if its outputs are not finite. A file (photo or video) in which no face was found is
    listed in ``no_face``.
    """
    from kerascv_emotion.data.cache import Progress
    from kerascv_emotion.data.images import prepare_image
    from kerascv_emotion.face_detection import aligned_face, find_faces

    check_face_options(detect_faces, detector, align)
    task = config.get("task", "classification")
    names = list(config["output_names"])
    size, channels = int(config["image_size"]), int(config["channels"])
    landmarks = detect_faces and detector == "yunet"
    result = Predictions(task, _columns(task, names, landmarks, times), skipped=list(skipped))
    batch: list[np.ndarray] = []
    where: list[tuple[str, float | None, int, Face]] = []
    faces_in: dict[str, int] = {}  # faces found per decoded file

    def flush() -> None:
        if not batch:
            return
        outputs = predict_batches(model, batch, len(batch), source=source)  # one call, faces of a file together
        result.rows.extend(_row(p, t, f, b, out, task, names, landmarks, times)
                           for (p, t, f, b), out in zip(where, outputs, strict=True))
        batch.clear()
        where.clear()

    bar = Progress("predict", total, progress)
    seen: set[str] = set()
    for path, time, img in frames:
        if path not in seen:
            seen.add(path)
            bar.update(len(seen))
        try:
            if isinstance(img, BadImageError):
                raise img
            faces = find_faces(img, margin, detector) if detect_faces else [Face((0, 0, img.width, img.height))]
            crops = [prepare_image(aligned_face(img, face, channels), path, size, channels) if align
                     else prepare_image(img, path, size, channels, face.box if detect_faces else None)
                     for face in faces]
        except BadImageError as exc:
            result.skipped.append({"path": path, "reason": exc.reason})
            continue
        faces_in[path] = faces_in.get(path, 0) + len(faces)
        for number, (face, crop) in enumerate(zip(faces, crops, strict=True)):
            batch.append(crop)
            where.append((path, time, number, face))
        if len(batch) >= batch_size:
            flush()
    flush()
    result.no_face = [path for path, count in faces_in.items() if count == 0]
    return result


def open_video(path: str) -> Any:
    """``cv2.VideoCapture(path)``, with FFmpeg's own log lines off: a file that is not a video
    gets our one skip line, not FFmpeg's too (e.g. "moov atom not found"). OpenCV reads
    ``OPENCV_FFMPEG_LOGLEVEL`` at its first video; a value the user set is kept."""
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's AV_LOG_QUIET
    return cv2.VideoCapture(path)


def video_frames(path: str, every: float = DEFAULT_EVERY, sampled_only: bool = True) -> Iterator[Frame]:
    """The frames of video ``path`` as :data:`Frame` s (RGB) every ``every`` seconds (the first
    frame at or after 0, every, 2 x every, ...); with ``sampled_only=False`` all frames, those
    between samples with time ``None``. One ``(path, None, BadImageError)`` if the file cannot
    be read as a video."""
    import cv2

    if every <= 0:
        raise ConfigError(f"--every {every}: give a positive number of seconds between frames")
    capture = open_video(path)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
        if not fps or not np.isfinite(fps) or fps <= 0:
            yield path, None, BadImageError(path, "cannot be read as a video by OpenCV (no frame rate)")
            return
        index, next_time, decoded = 0, 0.0, 0
        while capture.grab():
            time = index / fps
            sampled = time + 1e-9 >= next_time
            while next_time <= time + 1e-9:
                next_time += every
            if sampled or not sampled_only:
                ok, bgr = capture.retrieve()
                if ok:
                    decoded += 1
                    yield path, time if sampled else None, Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
            index += 1
        if decoded == 0:
            yield path, None, BadImageError(path, "no frame of the video could be decoded")
    finally:
        capture.release()


def read_frames(files: Iterable[str], max_pixels: int | None, every: float = DEFAULT_EVERY) -> Iterator[Frame]:
    """The :data:`Frame` s of ``files``: each photo decoded (or its BadImageError), each
    video's frames every ``every`` seconds (:func:`video_frames`)."""
    from kerascv_emotion.data.images import open_image

    for path in files:
        if is_video(path):
            yield from video_frames(path, every)
            continue
        try:
            yield path, None, open_image(path, max_pixels)
        except BadImageError as exc:
            yield path, None, exc


def predict(run_dir: str | os.PathLike, inputs: Sequence[str | os.PathLike] | Inputs, detect_faces: bool = False,
            margin: float = DEFAULT_MARGIN, batch_size: int = 32, max_pixels: int | None = None,
            progress: bool = True, detector: str = DEFAULT_DETECTOR, align: bool = False,
            every: float = DEFAULT_EVERY, calibrate: bool = True) -> Predictions:
    """Predict every image (or, with ``detect_faces``, every face) named by ``inputs``
    (:func:`collect_inputs`, or what it returned), and the frames of videos every ``every``
    seconds, with ``RUN/model.keras`` (:func:`predict_frames`).

    ``margin``: each detected box grows by this fraction of its side on every side.
    ``max_pixels`` defaults to the run's own setting. A progress bar goes to stderr.
    Probabilities are divided by the run's temperature unless ``calibrate`` is off
    (:mod:`kerascv_emotion.temperature`).
    """
    config = read_config(run_dir)
    check_face_options(detect_faces, detector, align)
    max_pixels = max_pixels or config.get("max_pixels")
    files, skipped = inputs if isinstance(inputs, Inputs) else collect_inputs(inputs)
    _, model, _ = load_run_model(run_dir, calibrate)
    return predict_frames(model, config, read_frames(files, max_pixels, every), len(files),
                          detect_faces, margin, detector, align, batch_size, skipped, progress,
                          times=any(map(is_video, files)), source=str(Path(run_dir) / MODEL))


def write_csv(path: str | os.PathLike, result: Predictions) -> Path:
    """Write ``result.rows`` as UTF-8 CSV atomically (probabilities with 6 decimals).

    A file name that is not UTF-8 (``caf\\xe9.png`` from a Latin-1 system) is written as the
    bytes it has on disk (``surrogateescape``, as ``os.fsencode`` gives them), so the path still
    names the file; a warning counts such rows."""
    path = Path(path)
    raw = sum(not is_utf8(str(row["path"])) for row in result.rows)
    if raw:
        log.warning("%s: %d row(s) have a file name that is not UTF-8, written as its bytes on disk", path, raw)
    with atomic_open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.DictWriter(handle, fieldnames=result.columns)
        writer.writeheader()
        for row in result.rows:
            writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})
    return path


def _write_annotated_video(path: str, target: Path, rows: Sequence[dict[str, Any]], task: str, every: float) -> None:
    """``target`` (MJPG ``.avi``): every frame of video ``path`` with the boxes and labels of the
    latest sampled frame (none after a sampled frame without a face)."""
    import cv2

    from kerascv_emotion.face_detection import annotate

    by_time: dict[float, list[dict[str, Any]]] = {}
    for row in rows:
        by_time.setdefault(row["time_s"], []).append(row)
    capture = open_video(path)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    current: list[dict[str, Any]] = []
    with atomic_path(target, suffix=".avi") as tmp:
        writer = None
        try:
            for _, time, frame in video_frames(path, every, sampled_only=False):
                if isinstance(frame, BadImageError):
                    continue
                if time is not None:
                    current = by_time.get(round(time, 3), [])
                boxes = [(r["face_x"], r["face_y"], r["face_w"], r["face_h"]) for r in current]
                drawn = np.asarray(annotate(frame, boxes, [row_label(r, task) for r in current]))[:, :, ::-1]
                if writer is None:
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), fps,
                                             (drawn.shape[1], drawn.shape[0]))
                writer.write(np.ascontiguousarray(drawn))
        finally:
            if writer is not None:
                writer.release()


def write_annotated(folder: str | os.PathLike, result: Predictions, max_pixels: int | None = None,
                    every: float = DEFAULT_EVERY, explainer: Any = None) -> list[Path]:
    """Write ``FOLDER/<name>.png``, a copy of each image with rows, its boxes and labels drawn,
    and ``FOLDER/<name>.avi`` for each video with rows (every frame, with the boxes of the latest
    frame sampled every ``every`` seconds, as :func:`predict` sampled it); a repeated name gets
    ``-2``, ``-3``, ..., and so does a name that is one of the inputs (an input is never
    overwritten); returns the files written. With ``explainer`` (a
    :class:`kerascv_emotion.explain.GradCam`) each box in a photo shows the heat map of its
    predicted class."""
    from kerascv_emotion.data.images import open_image
    from kerascv_emotion.face_detection import annotate

    by_path: dict[str, list[dict[str, Any]]] = {}
    for row in result.rows:
        by_path.setdefault(row["path"], []).append(row)
    written: list[Path] = []
    used: set[str] = set()
    inputs = result.input_files()
    for path, rows in by_path.items():
        stem, n, suffix = Path(path).stem, 1, ".avi" if is_video(path) else ".png"
        while ((name := f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}") in used
               or (Path(folder) / name).resolve() in inputs):
            n += 1
        used.add(name)
        if is_video(path):
            _write_annotated_video(path, Path(folder) / name, rows, result.task, every)
            written.append(Path(folder) / name)
            continue
        boxes = [(r["face_x"], r["face_y"], r["face_w"], r["face_h"]) for r in rows]
        image = open_image(path, max_pixels)
        if explainer is not None:
            image = explainer.overlay(image, path, boxes, [r["label"] for r in rows])
        image = annotate(image, boxes, [row_label(r, result.task) for r in rows])
        with atomic_path(Path(folder) / name) as tmp:
            image.save(tmp, format="PNG")
        written.append(Path(folder) / name)
    return written
