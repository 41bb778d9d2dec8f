"""Shared pieces of the dataset readers: class-name mapping, CSV rows with line numbers,
and the step that turns a reader's records into a :class:`DatasetIndex` (map, select, split)."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from kerascv_emotion.data.files import natural_key
from kerascv_emotion.data.index import DatasetIndex, IndexRecord, SplitOptions, assign_splits
from kerascv_emotion.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: The eight AffectNet expression names every face set is mapped to.
CANONICAL_CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise")

#: Lower-case class names used by face sets (FER2013, CK+, AffectNet, RAF-DB, JAFFE, KDEF
#: spellings) -> the AffectNet names in :data:`CANONICAL_CLASSES`.
CANONICAL_CLASS_MAP: dict[str, str] = {
    **{name: name for name in CANONICAL_CLASSES},
    "angry": "anger", "anger": "anger",
    "contemptuous": "contempt",
    "disgusted": "disgust",
    "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happiness": "happy", "joy": "happy",
    "neutrality": "neutral", "calm": "neutral",
    "sadness": "sad",
    "surprised": "surprise",
}


def resolve_class_map(
    names: Sequence[str], class_map: Mapping[str, str] | None, canonical: bool
) -> dict[str, str]:
    """``{source name: final name}`` for every name in ``names``.

    The user's ``class_map`` wins; otherwise, when ``canonical``, a name is looked up
    (lower-cased) in :data:`CANONICAL_CLASS_MAP`; a user entry may also be keyed by the
    canonical name (``{"anger": "negative"}`` maps FER2013's ``angry``).
    """
    user = dict(class_map or {})
    for key, value in user.items():
        if not isinstance(key, str) or not isinstance(value, str) or not value:
            raise ConfigError(f"class_map entry {key!r}: {value!r} must map a class name to a non-empty name")
    resolved: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        if name in user:
            resolved[name] = user[name]
            used.add(name)
            continue
        mapped = CANONICAL_CLASS_MAP.get(name.lower(), name) if canonical else name
        if mapped in user:
            used.add(mapped)
        resolved[name] = user.get(mapped, mapped)
    unused = sorted(set(user) - used)
    if unused:
        log.warning("class_map keys %s match no class of this dataset (its classes: %s)", unused, sorted(names))
    return resolved


def _select_names(present: Sequence[str], classes: Sequence[str] | None, source: Path) -> list[str]:
    """The final ordered class names: ``classes`` if given (all must be present), else sorted."""
    if classes is None:
        return sorted(set(present), key=natural_key)
    if not classes or len(set(classes)) != len(classes):
        raise ConfigError(f"classes={list(classes)} must be a non-empty list without repeats")
    missing = [c for c in classes if c not in set(present)]
    if missing:
        raise DataError(
            f"classes {missing} requested, but {source} has only {sorted(set(present))} "
            "(after class mapping); fix the classes or the class map"
        )
    return list(classes)


def make_index(
    root: Path,
    entries: Sequence[IndexRecord],
    *,
    source: Path,
    options: SplitOptions,
    canonical: bool,
    by_group: bool = False,
    meta: dict[str, Any] | None = None,
) -> DatasetIndex:
    """Map and select classes (by ``options``), carve missing splits, and build the index.

    ``entries`` are a reader's records with the source's own class names as labels, in
    ``train`` when the source gives no split. ``train`` must exist; a missing ``val``/``test``
    is carved from ``train`` by the ``options``' fractions (0 skips), stratified by class, or
    by ``group`` (whole groups) when ``by_group``.
    """
    if not entries:
        raise DataError(f"no images found in {source}")
    mapping = resolve_class_map(sorted({e.label for e in entries}), options.class_map, canonical)
    names = _select_names([mapping[e.label] for e in entries], options.classes, source)
    keep = set(names)
    records = [replace(e, label=mapping[e.label]) for e in entries if mapping[e.label] in keep]

    present = {r.split for r in records}
    if "train" not in present:
        raise DataError(f"{source} has splits {sorted(present)} but no train split")
    val_f = options.val_fraction if "val" not in present else 0.0
    test_f = options.test_fraction if "test" not in present else 0.0
    pool = [i for i, r in enumerate(records) if r.split == "train"]
    carved = assign_splits(
        [records[i].label for i in pool], val_f, test_f, options.seed,
        groups=[str(records[i].group) for i in pool] if by_group else None,
    )
    for i, split in zip(pool, carved, strict=True):
        records[i] = replace(records[i], split=split)

    index_meta = dict(meta or {})
    index_meta["class_map"] = {k: v for k, v in mapping.items() if k != v}
    return DatasetIndex(root.resolve(), names, records, index_meta)


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a :class:`DataError` naming ``what`` it should be."""
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist or is not a file")
    return path


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else a :class:`DataError` naming ``what`` it should be."""
    if not path.is_dir():
        raise DataError(f"{what} {path} does not exist or is not a folder")
    return path


def csv_rows(path: str | os.PathLike, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line number, row)`` of a CSV with a header (BOM and header spaces tolerated).

    Raises :class:`DataError` naming the file and the missing column(s) when the header
    lacks any of ``required``, and naming the line when a row has too few or many cells.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path} is empty; expected a header with columns {list(required)}") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing} (the header has {header})")
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise DataError(
                    f"{path}, line {reader.line_num}: {len(cells)} cells, but the header has {len(header)}"
                )
            yield reader.line_num, dict(zip(header, cells, strict=True))

