"""The one dataset index every reader produces.

An index is two files side by side:

* ``NAME.csv`` -- one row per image: ``path`` (POSIX, relative to the dataset root),
  ``split`` (``train``/``val``/``test``), ``label`` (a class name), then the optional
  ``valence``, ``arousal`` (floats in [-1, 1]), ``face_x``, ``face_y``, ``face_w``,
  ``face_h`` (face box in pixels of the original image) and ``group`` (e.g. a subject id);
  empty cells mean "not given".
* ``NAME.meta.json`` -- ``class_names`` (ordered: label id ``i`` is ``class_names[i]``),
  ``root`` (the dataset root, relative to the index's folder when possible) and
  free-form ``meta`` (source reader, seed, skipped files, duplicates).

Label ids are therefore stable across runs and machines.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from kerascv_emotion.errors import DataError
from kerascv_emotion.io import atomic_open, read_json, write_json

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
COLUMNS = (
    "path", "split", "label", "valence", "arousal",
    "face_x", "face_y", "face_w", "face_h", "group",
)
SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "publictest": "val",
    "test": "test", "testing": "test", "privatetest": "test",
}


@dataclass(frozen=True)
class IndexRecord:
    """One image of a dataset index. ``face_box`` is ``(x, y, w, h)`` in pixels."""

    path: str
    split: str
    label: str
    valence: float | None = None
    arousal: float | None = None
    face_box: tuple[int, int, int, int] | None = None
    group: str | None = None


def check_relative_path(path: str) -> str:
    """Return ``path`` as a normalised POSIX relative path, or raise if it escapes the root.

    Absolute paths, drive letters and any ``..`` component are rejected.
    """
    posix = path.replace("\\", "/")
    pure = PurePosixPath(posix)
    if not posix or pure.is_absolute() or (len(posix) > 1 and posix[1] == ":"):
        raise DataError(f"index path {path!r} is absolute; paths must be relative to the dataset root")
    if any(part == ".." for part in pure.parts):
        raise DataError(f"index path {path!r} escapes the dataset root ('..'); remove it from the index")
    return str(pure)


@dataclass
class DatasetIndex:
    """Images of one dataset: ``root``, ordered ``class_names`` and one record per image."""

    root: Path
    class_names: list[str]
    records: list[IndexRecord]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.class_names = list(self.class_names)
        if len(set(self.class_names)) != len(self.class_names):
            raise DataError(f"duplicate class names in index: {self.class_names}")
        known = set(self.class_names)
        for rec in self.records:
            check_relative_path(rec.path)
            if rec.label not in known:
                raise DataError(
                    f"index row {rec.path!r} has label {rec.label!r}, which is not one of "
                    f"the index's classes {self.class_names}"
                )
            if rec.split not in SPLITS:
                raise DataError(f"index row {rec.path!r} has split {rec.split!r}; use one of {SPLITS}")

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, split: str) -> DatasetIndex:
        """The records of one split (same root, classes and meta)."""
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; use one of {SPLITS}")
        return DatasetIndex(self.root, self.class_names, [r for r in self.records if r.split == split], dict(self.meta))

    def splits(self) -> list[str]:
        """Split names present, in train/val/test order."""
        present = {r.split for r in self.records}
        return [s for s in SPLITS if s in present]

    def label_ids(self) -> np.ndarray:
        """Integer label ids, shape ``(N,)``, ``int64``."""
        lookup = {name: i for i, name in enumerate(self.class_names)}
        return np.array([lookup[r.label] for r in self.records], dtype=np.int64)

    @property
    def has_valence_arousal(self) -> bool:
        return bool(self.records) and all(r.valence is not None and r.arousal is not None for r in self.records)

    def valence_arousal(self) -> np.ndarray:
        """Valence and arousal, shape ``(N, 2)``, ``float32``; raises if any are missing."""
        if not self.has_valence_arousal:
            raise DataError("this index has no valence/arousal for every row; a regression task needs them")
        return np.array([[r.valence, r.arousal] for r in self.records], dtype=np.float32)

    def resolve(self, record: IndexRecord) -> Path:
        """Absolute path of a record's image (validated not to escape the root)."""
        return self.root / check_relative_path(record.path)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {class: n}}`` with every class listed (zeros included)."""
        out: dict[str, dict[str, int]] = {}
        for split in self.splits():
            c = Counter(r.label for r in self.records if r.split == split)
            out[split] = {name: c.get(name, 0) for name in self.class_names}
        return out

    def fingerprint(self) -> str:
        """SHA-256 over root, class names and every row: changes whenever the content does."""
        h = hashlib.sha256()
        h.update(str(self.root.resolve()).encode())
        h.update("\x1f".join(self.class_names).encode())
        for row in _rows(self.records):
            h.update("\x1f".join(row).encode())
            h.update(b"\x1e")
        return h.hexdigest()

    def with_records(self, records: Iterable[IndexRecord]) -> DatasetIndex:
        return DatasetIndex(self.root, self.class_names, list(records), dict(self.meta))

    def write(self, csv_path: str | os.PathLike) -> Path:
        """Write ``csv_path`` and its ``.meta.json`` sidecar atomically; returns the CSV path."""
        csv_path = Path(csv_path)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(csv_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(_rows(self.records))
        try:
            root = os.path.relpath(self.root.resolve(), csv_path.parent.resolve())
        except ValueError:  # different drives on Windows
            root = str(self.root.resolve())
        write_json(meta_path(csv_path), {
            "format": "kerascv_emotion.index/1",
            "root": Path(root).as_posix(),
            "class_names": self.class_names,
            "counts": self.counts(),
            "meta": self.meta,
        })
        return csv_path


def meta_path(csv_path: str | os.PathLike) -> Path:
    """The sidecar of an index CSV: ``NAME.csv`` -> ``NAME.meta.json``."""
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.stem + ".meta.json")


def _fmt(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def _rows(records: Sequence[IndexRecord]) -> Iterable[list[str]]:
    for r in records:
        box = r.face_box or (None, None, None, None)
        yield [r.path, r.split, r.label, _fmt(r.valence), _fmt(r.arousal), *(_fmt(b) for b in box), r.group or ""]


def read_index(csv_path: str | os.PathLike) -> DatasetIndex:
    """Read an index written by :meth:`DatasetIndex.write` (or by hand in the same format)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"index file {csv_path} does not exist; create it with `kerascv-emotion index ROOT --out {csv_path}`")
    sidecar = meta_path(csv_path)
    if not sidecar.is_file():
        raise DataError(f"index {csv_path} has no sidecar {sidecar.name} (class names and root); rewrite it with `kerascv-emotion index`")
    try:
        meta = read_json(sidecar)
        class_names = list(meta["class_names"])
        root = Path(meta.get("root", "."))
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{sidecar}: not a valid index sidecar ({exc})") from None
    if not root.is_absolute():
        root = (csv_path.parent / root).resolve()
    records = _read_rows(csv_path)
    _check_repeated_rows(csv_path, records)
    try:
        return DatasetIndex(root, class_names, records, meta.get("meta", {}))
    except DataError as exc:
        raise DataError(f"{csv_path}: {exc}") from None


def _read_rows(csv_path: Path) -> list[IndexRecord]:
    """The rows of an index CSV: UTF-8 text, with or without the byte-order mark that
    spreadsheets write ("CSV UTF-8"); other encodings and binary files are a one-line DataError."""
    records: list[IndexRecord] = []
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = {"path", "split", "label"} - set(reader.fieldnames or ())
            if missing:
                raise DataError(f"{csv_path}: header lacks column(s) {sorted(missing)}")
            for line_no, row in enumerate(reader, start=2):
                try:
                    records.append(_parse_row(row))
                except (ValueError, DataError) as exc:
                    raise DataError(f"{csv_path}, line {line_no}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{csv_path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
                        "save it as UTF-8 CSV (a spreadsheet's \"CSV UTF-8\") or rebuild it with "
                        "`kerascv-emotion index`") from None
    except csv.Error as exc:
        raise DataError(f"{csv_path}: not a CSV file ({exc}); rebuild it with "
                        "`kerascv-emotion index`") from None
    return records


def _check_repeated_rows(csv_path: Path, records: Sequence[IndexRecord]) -> None:
    """A path listed twice counts twice: warn when the copies share a split and label, raise
    DataError when they sit in different splits (a test image seen in training) or disagree
    on the label."""
    seen: dict[str, list[IndexRecord]] = {}
    for rec in records:
        seen.setdefault(rec.path, []).append(rec)
    repeated = {path: recs for path, recs in seen.items() if len(recs) > 1}
    for path, recs in repeated.items():
        splits = sorted({r.split for r in recs}, key=SPLITS.index)
        labels = sorted({r.label for r in recs})
        if len(splits) > 1 or len(labels) > 1:
            what = f"splits {' and '.join(splits)}" if len(splits) > 1 else f"labels {' and '.join(labels)}"
            raise DataError(f"{csv_path}: {path!r} is listed twice or more, in {what}; keep one row per image")
    if repeated:
        example = next(iter(repeated))
        log.warning("%s: %d image(s) listed twice or more in the same split (e.g. %r, %d times); each copy "
                    "counts", csv_path, len(repeated), example, len(repeated[example]))


def _opt_float(text: str | None) -> float | None:
    return None if text is None or text.strip() == "" else float(text)


def _parse_row(row: dict[str, str]) -> IndexRecord:
    box_cells = [row.get(k) for k in ("face_x", "face_y", "face_w", "face_h")]
    if all(c is None or c.strip() == "" for c in box_cells):
        box = None
    elif any(c is None or c.strip() == "" for c in box_cells):
        raise ValueError("face box needs all of face_x, face_y, face_w, face_h or none")
    else:
        box = tuple(int(round(float(c))) for c in box_cells)  # type: ignore[arg-type]
        if box[2] <= 0 or box[3] <= 0:
            raise ValueError(f"face box {box} has a non-positive width or height")
    split = SPLIT_ALIASES.get((row.get("split") or "").strip().lower())
    if split is None:
        raise ValueError(f"split {row.get('split')!r} is not one of {SPLITS}")
    return IndexRecord(
        path=check_relative_path(row["path"]),
        split=split,
        label=row["label"],
        valence=_opt_float(row.get("valence")),
        arousal=_opt_float(row.get("arousal")),
        face_box=box,  # type: ignore[arg-type]
        group=(row.get("group") or None),
    )


@dataclass(frozen=True)
class SplitOptions:
    """How a reader splits and names classes; the defaults of every reader and ``build_index``.

    Splits the source does not give are carved from train by ``val_fraction`` and
    ``test_fraction`` (seeded by ``seed``; checked by :func:`check_fractions` when carving).
    ``class_map`` renames classes; ``classes`` keeps only those final names, in that order
    (default: all, sorted).
    """

    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    class_map: Mapping[str, str] | None = None
    classes: Sequence[str] | None = None


#: The defaults, as the default argument of the readers (a frozen, shared instance).
DEFAULT_SPLIT_OPTIONS = SplitOptions()


def check_fractions(val_fraction: float, test_fraction: float, error: type[Exception] = DataError) -> None:
    """Raise ``error`` unless each fraction is in [0, 1) and their sum is below 1."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise error(f"val_fraction={val_fraction} and test_fraction={test_fraction}: "
                    "each must be in [0, 1) and their sum below 1")


def assign_splits(
    labels: Sequence[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    groups: Sequence[str] | None = None,
) -> list[str]:
    """Seeded split assignment, shape ``(N,)`` of ``"train"/"val"/"test"``.

    Without ``groups`` the split is stratified: each class is shuffled and cut by the
    fractions (rounded; a class keeps at least one training image). With ``groups``
    (e.g. subject ids) whole groups go to one split, so no group straddles splits.
    """
    check_fractions(val_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    out = ["train"] * len(labels)
    if groups is not None:
        unique = sorted(set(groups))
        order = rng.permutation(len(unique))
        sizes = Counter(groups)
        total = len(labels)
        assigned: dict[str, str] = {}
        taken = {"test": 0, "val": 0}
        for i in order:
            g = unique[i]
            if taken["test"] < test_fraction * total:
                assigned[g] = "test"
            elif taken["val"] < val_fraction * total:
                assigned[g] = "val"
            else:
                assigned[g] = "train"
            if assigned[g] in taken:
                taken[assigned[g]] += sizes[g]
        return [assigned[g] for g in groups]
    by_class: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_class.setdefault(lab, []).append(i)
    for lab in sorted(by_class):
        members = np.array(by_class[lab])[rng.permutation(len(by_class[lab]))]
        n = len(members)
        n_test = int(round(n * test_fraction))
        n_val = int(round(n * val_fraction))
        while n_test + n_val >= n and (n_test or n_val):
            if n_test >= n_val and n_test:
                n_test -= 1
            else:
                n_val -= 1
        for i in members[:n_test]:
            out[i] = "test"
        for i in members[n_test:n_test + n_val]:
            out[i] = "val"
    return out
