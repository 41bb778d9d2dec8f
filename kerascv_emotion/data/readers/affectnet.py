"""AffectNet (Mollahosseini et al. 2017) annotation CSVs -> index with face boxes and
valence/arousal.

Each CSV row: ``subDirectory_filePath, face_x, face_y, face_width, face_height,
facial_landmarks, expression, valence, arousal``. ``training.csv`` is train,
``validation.csv`` val and an optional ``test.csv`` test; the files may sit in the root or
in ``Manually_Annotated_file_lists/``, the images in the root or in
``Manually_Annotated_Images/`` (both AffectNet's own layout and a flat copy work).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path

from kerascv_emotion.data.index import (
    DEFAULT_SPLIT_OPTIONS,
    DatasetIndex,
    IndexRecord,
    SplitOptions,
    check_relative_path,
)
from kerascv_emotion.data.readers.common import csv_rows, make_index, require_dir
from kerascv_emotion.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: AffectNet expression id -> name; ids 8-10 are not expressions and are dropped for
#: classification (kept, under these names, for valence/arousal regression).
AFFECTNET_EXPRESSIONS = (
    "neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt",
    "none", "uncertain", "no-face",
)
NON_EXPRESSION_IDS = frozenset({8, 9, 10})
NO_VALENCE_AROUSAL = -2.0
CSV_SPLITS = {"training.csv": "train", "validation.csv": "val", "test.csv": "test"}
LIST_DIRS = ("", "Manually_Annotated_file_lists")
IMAGE_DIRS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images")
COLUMNS = (
    "subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
    "expression", "valence", "arousal",
)


def find_annotation_files(root: Path) -> dict[str, Path]:
    """``{split: csv path}`` for the annotation files in ``root`` (see the module doc)."""
    found: dict[str, Path] = {}
    for sub in LIST_DIRS:
        folder = root / sub
        if not folder.is_dir():
            continue
        for child in sorted(folder.iterdir()):
            split = CSV_SPLITS.get(child.name.lower())
            if split and child.is_file() and split not in found:
                found[split] = child
    if "train" not in found:
        raise DataError(
            f"no AffectNet training.csv in {root} or {root / LIST_DIRS[1]}; "
            "point the source at the folder holding the annotation CSVs"
        )
    return found


def image_root(root: Path) -> Path:
    """The folder the CSVs' ``subDirectory_filePath`` values are relative to: the first of
    ``Manually_Annotated_Images/`` (also under ``Manually_Annotated/``) that exists, else ``root``."""
    return next((root / sub for sub in IMAGE_DIRS if (root / sub).is_dir()), root)


def _parse_row(row: dict[str, str]) -> tuple[str, int, tuple[int, int, int, int], float, float]:
    """``(path, expression id, face box, valence, arousal)``; ``ValueError`` saying what is wrong."""
    path = check_relative_path(row["subDirectory_filePath"].strip())
    try:
        box = tuple(int(round(float(row[c]))) for c in ("face_x", "face_y", "face_width", "face_height"))
    except ValueError:
        raise ValueError(
            "face box (face_x, face_y, face_width, face_height) "
            f"{[row[c] for c in COLUMNS[1:5]]} is not numeric"
        ) from None
    if box[2] <= 0 or box[3] <= 0 or box[0] < 0 or box[1] < 0:
        raise ValueError(f"face box {box} has a negative corner or a non-positive size")
    try:
        expression = int(row["expression"])
    except ValueError:
        expression = -1
    if not 0 <= expression < len(AFFECTNET_EXPRESSIONS):
        raise ValueError(f"expression {row['expression']!r} is not an id 0-10")
    try:
        valence, arousal = float(row["valence"]), float(row["arousal"])
    except ValueError:
        raise ValueError(f"valence {row['valence']!r} or arousal {row['arousal']!r} is not a number") from None
    for name, value in (("valence", valence), ("arousal", arousal)):
        if value != NO_VALENCE_AROUSAL and not (math.isfinite(value) and -1.0 <= value <= 1.0):
            raise ValueError(f"{name} {value} is outside [-1, 1] (and not the -2 'no value' marker)")
    return path, expression, box, valence, arousal  # type: ignore[return-value]


def read_affectnet(
    root: str | Path,
    options: SplitOptions = DEFAULT_SPLIT_OPTIONS,
    *,
    task: str = "classification",
) -> DatasetIndex:
    """Index AffectNet from its annotation CSVs (see the module doc for the layout).

    ``task="classification"`` drops rows with expression 8-10 (none, uncertain, no-face);
    ``task="regression"`` drops rows whose valence or arousal is -2 (not annotated).
    Valence/arousal are stored wherever annotated; the face box goes to the index's
    ``face_*`` columns. Rows whose image file is missing are skipped and listed in
    ``meta["skipped"]``. A missing ``val``/``test`` split is carved from train.
    """
    if task not in ("classification", "regression"):
        raise ConfigError(f"task={task!r}: use 'classification' or 'regression'")
    root = require_dir(Path(root), "AffectNet root")
    files = find_annotation_files(root)
    images = image_root(root)
    entries: list[IndexRecord] = []
    skipped: list[dict[str, str]] = []
    dropped: Counter[str] = Counter()
    for split, csv_path in files.items():
        for line, row in csv_rows(csv_path, COLUMNS):
            try:
                path, expression, box, valence, arousal = _parse_row(row)
            except (ValueError, DataError) as exc:
                raise DataError(f"{csv_path}, line {line}: {exc}") from None
            annotated = valence != NO_VALENCE_AROUSAL and arousal != NO_VALENCE_AROUSAL
            if task == "classification" and expression in NON_EXPRESSION_IDS:
                dropped[f"{split}: expression {AFFECTNET_EXPRESSIONS[expression]}"] += 1
                continue
            if task == "regression" and not annotated:
                dropped[f"{split}: no valence/arousal"] += 1
                continue
            if not (images / path).is_file():
                skipped.append({"path": path, "reason": f"listed in {csv_path.name} line {line}, file not found"})
                continue
            entries.append(IndexRecord(
                path=path, split=split, label=AFFECTNET_EXPRESSIONS[expression], face_box=box,
                valence=valence if annotated else None, arousal=arousal if annotated else None,
            ))
    if skipped and not entries:
        raise DataError(
            f"none of the {len(skipped)} AffectNet images listed in {sorted(p.name for p in files.values())} "
            f"exist under {images}; put them there (e.g. {images / skipped[0]['path']})"
        )
    if skipped:
        log.warning("affectnet: skipped %d rows whose image is missing (first: %s, %s)",
                    len(skipped), skipped[0]["path"], skipped[0]["reason"])
    return make_index(
        images, entries, source=root, options=options, canonical=True,
        meta={
            "source": "affectnet", "task": task,
            "annotations": {s: str(p.resolve()) for s, p in files.items()},
            "dropped": dict(sorted(dropped.items())), "skipped": skipped,
        },
    )
