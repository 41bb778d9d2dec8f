"""FER2013 (Goodfellow et al. 2013): Kaggle's pixel CSV or class-folder images.

The CSV (``emotion``, ``pixels``, ``Usage``) holds each 48x48 grayscale face as 2,304
space-separated 0-255 values; the reader writes them as PNGs and indexes those.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from kerascv_emotion.data.index import (
    DEFAULT_SPLIT_OPTIONS,
    SPLIT_ALIASES,
    DatasetIndex,
    IndexRecord,
    SplitOptions,
)
from kerascv_emotion.data.readers.common import csv_rows, make_index, require_file
from kerascv_emotion.data.readers.folders import folder_entries
from kerascv_emotion.errors import DataError
from kerascv_emotion.io import atomic_path

log = logging.getLogger(__name__)

#: FER2013 emotion id -> its name in the dataset (mapped to the canonical names by default).
FER2013_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER2013_SIZE = 48


def _parse_pixels(text: str) -> np.ndarray:
    """``"70 80 ..."`` -> ``(48, 48)`` ``uint8``; ``ValueError`` saying what is wrong."""
    try:
        with warnings.catch_warnings():  # NumPy < 2.3 warns (not raises) on a bad value
            warnings.simplefilter("error", DeprecationWarning)
            values = np.fromstring(text, dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):
        raise ValueError("pixels holds a value that is not an integer") from None
    if values.size != FER2013_SIZE * FER2013_SIZE:
        raise ValueError(f"pixels has {values.size} values; expected {FER2013_SIZE * FER2013_SIZE} (48x48)")
    if values.min() < 0 or values.max() > 255:
        raise ValueError(f"pixels holds values outside 0-255 (min {values.min()}, max {values.max()})")
    return values.astype(np.uint8).reshape(FER2013_SIZE, FER2013_SIZE)


def read_fer2013_csv(
    csv_path: str | Path, images_dir: str | Path, options: SplitOptions = DEFAULT_SPLIT_OPTIONS
) -> DatasetIndex:
    """Index Kaggle's ``fer2013.csv``, writing each kept face to ``images_dir`` as a
    48x48 grayscale PNG (``<split>/<emotion>/<line>.png``; the index root is ``images_dir``).

    ``Usage`` Training/PublicTest/PrivateTest -> train/val/test; without a ``Usage``
    column (or with a split missing) splits are carved from train by the fractions.
    The whole file is validated before any image is written.
    """
    csv_path = require_file(Path(csv_path), "FER2013 CSV")
    images_dir = Path(images_dir)
    entries: list[IndexRecord] = []
    pixels: dict[str, np.ndarray] = {}
    has_usage = True
    for line, row in csv_rows(csv_path, ("emotion", "pixels")):
        has_usage = "Usage" in row
        try:
            emotion = int(row["emotion"])
            if not 0 <= emotion < len(FER2013_EMOTIONS):
                raise ValueError
        except ValueError:
            raise DataError(
                f"{csv_path}, line {line}: emotion {row['emotion']!r} is not an id 0-6 "
                f"({', '.join(FER2013_EMOTIONS)})"
            ) from None
        split = None
        if has_usage:
            split = SPLIT_ALIASES.get(row["Usage"].strip().lower())
            if split is None:
                raise DataError(
                    f"{csv_path}, line {line}: Usage {row['Usage']!r} is not Training, PublicTest or PrivateTest"
                )
        try:
            face = _parse_pixels(row["pixels"])
        except ValueError as exc:
            raise DataError(f"{csv_path}, line {line}: {exc}") from None
        name = FER2013_EMOTIONS[emotion]
        rel = f"{split}/{name}/{line:06d}.png" if split else f"{name}/{line:06d}.png"
        entries.append(IndexRecord(path=rel, split=split or "train", label=name))
        pixels[rel] = face

    index = make_index(
        images_dir, entries, source=csv_path, options=options, canonical=True,
        meta={"source": "fer2013-csv", "csv": str(csv_path.resolve()), "usage_column": has_usage},
    )

    def write(rel: str) -> None:
        buffer = io.BytesIO()
        Image.fromarray(pixels[rel]).save(buffer, format="PNG")
        data, target = buffer.getvalue(), images_dir / rel
        if target.is_file() and target.read_bytes() == data:
            return  # unchanged since the last run
        with atomic_path(target) as tmp:  # no fsync per file: atomic_open's would cost minutes
            tmp.write_bytes(data)

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1) * 2) as pool:
        list(pool.map(write, (r.path for r in index.records)))
    log.info("fer2013-csv: wrote %d PNGs under %s", len(index), images_dir)
    return index


def read_fer2013_folders(root: str | Path, options: SplitOptions = DEFAULT_SPLIT_OPTIONS) -> DatasetIndex:
    """Index FER2013 as image folders (``ROOT/train/<class>``, ``ROOT/val/<class>``, ...).

    Class names are mapped to the canonical ones (``angry`` -> ``anger``); missing
    ``val``/``test`` splits are carved from train by the fractions (0 to skip).
    """
    root = Path(root)
    entries, found = folder_entries(root)
    return make_index(
        root, entries, source=root, options=options, canonical=True,
        meta={"source": "fer2013", **found},
    )
