"""Reader for class-folder layouts: ``ROOT/<split>/<class>/*`` or ``ROOT/<class>/*``."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

from kerascv_emotion.data.index import (
    DEFAULT_SPLIT_OPTIONS,
    SPLIT_ALIASES,
    DatasetIndex,
    IndexRecord,
    SplitOptions,
    assign_splits,
)
from kerascv_emotion.errors import DataError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def natural_key(text: str) -> list[object]:
    """Sort key that orders ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def is_utf8(name: str) -> bool:
    """Whether a file name (as ``os`` decodes it, non-UTF-8 bytes as surrogates) is UTF-8 text."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _list_class_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: natural_key(p.name))


def _scan_class_dir(class_dir: Path, root: Path, skipped: list[dict[str, str]]) -> list[str]:
    """Relative POSIX paths of the images below ``class_dir`` (recursive, sorted)."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames, key=natural_key):
            if name.startswith("."):
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if full.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append({"path": rel, "reason": f"not an image extension ({full.suffix or 'none'})"})
            elif not is_utf8(rel):
                skipped.append({"path": rel, "reason": "file name is not UTF-8 (an index is UTF-8 text); rename it"})
            elif full.is_symlink() and not full.exists():
                skipped.append({"path": rel, "reason": f"dangling symlink (to {os.readlink(full)})"})
            elif not full.is_file():
                skipped.append({"path": rel, "reason": "not a regular file (a FIFO, socket or device)"})
            else:
                found.append(rel)
    return found


def index_from_folders(
    root: str | os.PathLike, options: SplitOptions = DEFAULT_SPLIT_OPTIONS
) -> DatasetIndex:
    """Index a class-folder layout.

    ``ROOT/<split>/<class>/*`` is used when every top-level folder is a split name
    (train/val/test and aliases); missing ``val``/``test`` splits are then carved from
    ``train`` (stratified, seeded) by ``options``' fractions (0 to skip).
    Otherwise ``ROOT/<class>/*`` is split into train/val/test by the fractions.

    Class names are the folder names (spaces allowed), mapped by ``options.class_map`` and,
    when ``options.classes`` is given, restricted to and ordered as it; otherwise sorted.
    Files without an image extension or with a name that is not UTF-8, dangling symlinks and
    non-regular files (FIFOs) are skipped, counted and listed in ``meta["skipped"]``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root {root} is not a folder")
    top = _list_class_dirs(root)
    if not top:
        raise DataError(f"dataset root {root} has no sub-folders; expected ROOT/<class>/* or ROOT/<split>/<class>/*")
    class_map, classes = options.class_map or {}, options.classes
    skipped: list[dict[str, str]] = []
    split_layout = all(p.name.lower() in SPLIT_ALIASES for p in top)
    entries: list[tuple[str, str, str | None]] = []  # (path, label, split or None)
    if split_layout:
        for split_dir in top:
            split = SPLIT_ALIASES[split_dir.name.lower()]
            for class_dir in _list_class_dirs(split_dir):
                label = class_map.get(class_dir.name, class_dir.name)
                entries += [(p, label, split) for p in _scan_class_dir(class_dir, root, skipped)]
    else:
        for class_dir in top:
            label = class_map.get(class_dir.name, class_dir.name)
            entries += [(p, label, None) for p in _scan_class_dir(class_dir, root, skipped)]

    if classes is not None:
        found = {e[1] for e in entries}
        unknown = [c for c in classes if c not in found]
        if unknown:
            raise DataError(f"classes {unknown} requested, but {root} has only {sorted(found, key=natural_key)}")
        entries = [e for e in entries if e[1] in set(classes)]
        names = list(classes)
    else:
        names = sorted({e[1] for e in entries}, key=natural_key)
    if not entries:
        raise DataError(f"no images found under {root} (extensions {sorted(IMAGE_EXTENSIONS)})")

    present = {e[2] for e in entries}
    if split_layout and "train" not in present:
        raise DataError(f"{root} has split folders {sorted(p.name for p in top)} but no train split")
    if not split_layout or "val" not in present or "test" not in present:
        # carve the missing splits out of train (or out of everything in a flat layout)
        pool = [i for i, e in enumerate(entries) if e[2] in (None, "train")]
        val_f = options.val_fraction if "val" not in present else 0.0
        test_f = options.test_fraction if "test" not in present else 0.0
        carved = assign_splits([entries[i][1] for i in pool], val_f, test_f, options.seed)
        for i, split in zip(pool, carved, strict=True):
            entries[i] = (entries[i][0], entries[i][1], split)

    for item in skipped:
        log.warning("index: skipped %s (%s)", item["path"], item["reason"])
    records = [IndexRecord(path=p, split=s or "train", label=lab) for p, lab, s in entries]
    meta = {
        "source": "folders",
        "layout": "split/class" if split_layout else "class",
        "seed": options.seed,
        "val_fraction": options.val_fraction,
        "test_fraction": options.test_fraction,
        "skipped": skipped,
    }
    if class_map:
        meta["class_map"] = dict(class_map)
    return DatasetIndex(root.resolve(), names, records, meta)


def labelled_test_index(root: str | os.PathLike, class_names: Sequence[str]) -> tuple[DatasetIndex, list[str]]:
    """A test-only index of ``ROOT/<class>/*`` or ``ROOT/test/<class>/*`` (a new labelled set
    for a trained model) whose classes are ``class_names`` (the model's, in its order).

    Folders are matched to ``class_names`` by exact name; one that is not among them is a
    DataError. Returns the index and the names in ``class_names`` without a folder (or
    without images). Non-image files are skipped as by :func:`index_from_folders`.
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
    records = [IndexRecord(path=p, split="test", label=d.name)
               for d in top for p in _scan_class_dir(d, root, skipped)]
    for item in skipped:
        log.warning("%s: skipped %s (%s)", root, item["path"], item["reason"])
    if not records:
        raise DataError(f"no images found under {root} (extensions {sorted(IMAGE_EXTENSIONS)})")
    present = {r.label for r in records}
    meta = {"source": "folders", "layout": "test-only", "skipped": skipped}
    return DatasetIndex(root.resolve(), list(class_names), records, meta), [c for c in class_names if c not in present]
