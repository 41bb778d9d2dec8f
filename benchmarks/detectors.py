"""Face detectors on a public labelled set: recall and precision at IoU >= 0.5 (and 0.3), and
milliseconds per photo, for each of this project's detectors (``--detector yunet|haar``, boxes
without the classification margin). See benchmarks/README.md, "Face detectors".

The labelled set: the face examples that ship in dlib's source distribution on PyPI (dlib 19.5.0,
``docs/docs/cache/examples/faces``: 9 PASCAL VOC photos with 43 hand-drawn face boxes in
``training.xml`` and ``testing.xml``; no detector here is trained on them, so both files count).
Fetch them without building dlib::

    curl -sL -o dlib.tgz "$(curl -s https://pypi.org/pypi/dlib/19.5.0/json | python -c \
        'import json,sys; print([f["url"] for f in json.load(sys.stdin)["urls"] if f["filename"].endswith(".tar.gz")][0])')"
    mkdir faces && tar xzf dlib.tgz -C faces --strip-components=6 dlib-19.5.0/docs/docs/cache/examples/faces
    python benchmarks/detectors.py faces

Boxes labelled ``ignore='1'`` neither count as misses nor make a detection on them false.
Detections match labels greedily by IoU (highest first), one to one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from latency import cpu_name  # noqa: E402  (benchmarks/ is the script's folder)
from PIL import Image  # noqa: E402

from kerascv_emotion.face_detection import DETECTORS, find_faces  # noqa: E402

Box = tuple[float, float, float, float]  # x, y, width, height (pixels)
LABEL_FILES = ("training.xml", "testing.xml")


def read_labels(folder: Path) -> dict[str, tuple[list[Box], list[Box]]]:
    """``{photo file: (face boxes, ignored boxes)}`` from dlib's imglab XML files in ``folder``."""
    labels: dict[str, tuple[list[Box], list[Box]]] = {}
    for name in LABEL_FILES:
        if not (folder / name).is_file():
            sys.exit(f"error: {folder / name} is missing; fetch the faces as this script's docstring says")
        for image in ET.parse(folder / name).getroot().iter("image"):
            faces, ignored = labels.setdefault(image.get("file"), ([], []))
            for box in image.iter("box"):
                xywh = tuple(float(box.get(k)) for k in ("left", "top", "width", "height"))
                (ignored if box.get("ignore") == "1" else faces).append(xywh)  # type: ignore[arg-type]
    return labels


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def match(found: list[Box], faces: list[Box], ignored: list[Box], threshold: float) -> tuple[int, int]:
    """(true positives, false positives) of ``found`` against ``faces``: greedy one-to-one by
    IoU >= ``threshold``; an unmatched detection on an ignored box is neither."""
    pairs = sorted(((iou(d, f), i, j) for i, d in enumerate(found) for j, f in enumerate(faces)), reverse=True)
    used_d, used_f = set(), set()
    for overlap, i, j in pairs:
        if overlap >= threshold and i not in used_d and j not in used_f:
            used_d.add(i)
            used_f.add(j)
    rest = [d for i, d in enumerate(found) if i not in used_d]
    false = sum(1 for d in rest if not any(iou(d, g) >= threshold for g in ignored))
    return len(used_d), false


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="dlib's examples/faces folder (photos + XML labels)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over all photos")
    args = parser.parse_args()
    labels = read_labels(args.folder)
    photos = {name: Image.open(args.folder / name).convert("RGB") for name in sorted(labels)}
    total = sum(len(faces) for faces, _ in labels.values())
    print(f"{len(photos)} photos, {total} labelled faces; CPU: {cpu_name()} ({os.cpu_count()} logical); "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print("| detector | IoU | recall | precision | found | ms per photo (median of "
          f"{args.repeats} passes) |")
    print("|---|---:|---:|---:|---:|---:|")
    for detector in DETECTORS:
        found = {name: [f.box for f in find_faces(img, margin=0.0, detector=detector)] for name, img in photos.items()}
        passes = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for img in photos.values():
                find_faces(img, margin=0.0, detector=detector)
            passes.append((time.perf_counter() - start) / len(photos) * 1000)
        for threshold in (0.5, 0.3):
            tp = fp = 0
            for name, (faces, ignored) in labels.items():
                t, f = match(found[name], faces, ignored, threshold)
                tp, fp = tp + t, fp + f
            detections = sum(map(len, found.values()))
            precision = tp / (tp + fp) if tp + fp else float("nan")
            print(f"| {detector} | {threshold} | {tp / total:.3f} ({tp}/{total}) | {precision:.3f} | "
                  f"{detections} | {statistics.median(passes):.1f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
