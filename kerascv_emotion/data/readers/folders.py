"""Class-folder layouts, ``ROOT/<split>/<class>/*`` or ``ROOT/<class>/*``: the ``folders``
format, the files of the ``fer2013``, ``covid`` and ``ckplus`` readers, and the labelled test
folder of ``evaluate --data``.

Files are found by :func:`~kerascv_emotion.data.files.walk_files` (its order and its skips);
a file name that is not UTF-8 is skipped too (an index is UTF-8 text).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kerascv_emotion.data.files import IMAGE_EXTENSIONS, is_utf8, natural_key, walk_files
from kerascv_emotion.data.index import (
    DEFAULT_SPLIT_OPTIONS,
    SPLIT_ALIASES,
    DatasetIndex,
    IndexRecord,
    SplitOptions,
)
from kerascv_emotion.data.readers.common import make_index, require_dir
from kerascv_emotion.errors import DataError

log = logging.getLogger(__name__)


def _list_class_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: natural_key(p.name))


def _images(class_dir: Path, root: Path, skipped: list[dict[str, str]]) -> Iterator[str]:
    """Relative POSIX paths of the images below ``class_dir``, in the walk's order."""
    for rel in walk_files(class_dir, skipped, relative_to=root):
        if is_utf8(rel):
            yield rel
        else:
            skipped.append({"path": rel, "reason": "file name is not UTF-8 (an index is UTF-8 text); rename it"})


def _no_images(root: Path) -> DataError:
    return DataError(f"no images found under {root} (extensions {sorted(IMAGE_EXTENSIONS)})")


def folder_entries(root: Path) -> tuple[list[IndexRecord], dict[str, Any]]:
    """The images of a class-folder layout as records (the folder's class name as label) and
    the reader's meta: ``layout`` (``split/class`` or ``class``) and ``skipped``.

    ``ROOT/<split>/<class>/*`` is read when every top-level folder is a split name (train, val,
    test and aliases) and its splits are kept; in ``ROOT/<class>/*`` every image is in train.
    """
    root = require_dir(Path(root), "dataset root")
    top = _list_class_dirs(root)
    if not top:
        raise DataError(f"dataset root {root} has no sub-folders; expected ROOT/<class>/* or ROOT/<split>/<class>/*")
    split_layout = all(p.name.lower() in SPLIT_ALIASES for p in top)
    classes = ([(SPLIT_ALIASES[d.name.lower()], c) for d in top for c in _list_class_dirs(d)] if split_layout
               else [("train", c) for c in top])
    skipped: list[dict[str, str]] = []
    records = [IndexRecord(path=p, split=split, label=c.name)
               for split, c in classes for p in _images(c, root, skipped)]
    for item in skipped:
        log.warning("index: skipped %s (%s)", item["path"], item["reason"])
    if not records:
        raise _no_images(root)
    return records, {"layout": "split/class" if split_layout else "class", "skipped": skipped}


def read_folders(root: str | os.PathLike, options: SplitOptions = DEFAULT_SPLIT_OPTIONS) -> DatasetIndex:
    """Index a class-folder layout (see :func:`folder_entries`).

    Missing ``val``/``test`` splits are carved from train (stratified, seeded) by ``options``'
    fractions (0 to skip). Class names are the folder names (spaces allowed), mapped by
    ``options.class_map`` and, when ``options.classes`` is given, restricted to and ordered as
    it; otherwise sorted. Files without an image extension or with a name that is not UTF-8,
    dangling symlinks and non-regular files (FIFOs) are skipped, counted and listed in
    ``meta["skipped"]``.
    """
    root = Path(root)
    records, found = folder_entries(root)
    return make_index(root, records, source=root, options=options, canonical=False,
                      meta={"source": "folders", **found})


def labelled_test_index(root: str | os.PathLike, class_names: Sequence[str]) -> tuple[DatasetIndex, list[str]]:
    """A test-only index of ``ROOT/<class>/*`` or ``ROOT/test/<class>/*`` (a new labelled set
    for a trained model) whose classes are ``class_names`` (the model's, in its order).

    Folders are matched to ``class_names`` by exact name; one that is not among them is a
    DataError. Returns the index and the names in ``class_names`` without a folder (or
    without images). Files are skipped as by :func:`read_folders`.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"labelled data {root} is not a folder")
    top = _list_class_dirs(root)
    if top and all(p.name.lower() in SPLIT_ALIASES for p in top):
        splits = sorted(p.name for p in top)
        if [SPLIT_ALIASES[s.lower()] for s in splits] != ["test"]:
            raise DataError(f"{root} has split folders {splits}; give class folders, or test/<class>/* only")
        root, top = top[0], _list_class_dirs(top[0])
    if not top:
        raise DataError(f"{root} has no class folders; expected {root}/<class>/*")
    unknown = [p.name for p in top if p.name not in class_names]
    if unknown:
        raise DataError(f"{root}: class folder(s) {unknown} are not among the model's classes {list(class_names)}")
    skipped: list[dict[str, str]] = []
    records = [IndexRecord(path=p, split="test", label=d.name) for d in top for p in _images(d, root, skipped)]
    for item in skipped:
        log.warning("%s: skipped %s (%s)", root, item["path"], item["reason"])
    if not records:
        raise _no_images(root)
    present = {r.label for r in records}
    meta = {"source": "folders", "layout": "test-only", "skipped": skipped}
    return DatasetIndex(root.resolve(), list(class_names), records, meta), [c for c in class_names if c not in present]
