"""Dataset readers -> one :class:`~kerascv_emotion.data.index.DatasetIndex`.

:func:`build_index` is the single entry point (the CLI's ``index`` command calls it); it
counts exact duplicates (:func:`find_duplicates`) in ``meta["duplicates"]`` and removes them
(:func:`drop_duplicates`) when asked.
Face sets (``fer2013-csv``, ``fer2013``, ``affectnet``, ``ckplus``) get the canonical
AffectNet class names (:data:`CANONICAL_CLASS_MAP`) unless the user's map says otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kerascv_emotion.data.index import DatasetIndex, SplitOptions
from kerascv_emotion.data.readers.affectnet import read_affectnet
from kerascv_emotion.data.readers.ckplus import read_ckplus, subject_id
from kerascv_emotion.data.readers.common import CANONICAL_CLASS_MAP, CANONICAL_CLASSES
from kerascv_emotion.data.readers.covid import read_covid
from kerascv_emotion.data.readers.duplicates import (
    POLICY,
    drop_duplicates,
    duplicate_meta,
    duplicate_summary,
    find_duplicates,
)
from kerascv_emotion.data.readers.fer2013 import read_fer2013_csv, read_fer2013_folders
from kerascv_emotion.data.readers.folders import read_folders
from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.tasks import TASKS

__all__ = [
    "CANONICAL_CLASSES", "CANONICAL_CLASS_MAP", "POLICY", "SplitOptions", "available_formats", "build_index",
    "default_images_dir", "drop_duplicates", "duplicate_meta", "duplicate_summary", "find_duplicates",
    "read_affectnet", "read_ckplus", "read_covid", "read_fer2013_csv", "read_fer2013_folders", "read_folders",
    "subject_id",
]

_READERS: dict[str, Callable[..., DatasetIndex]] = {
    "folders": read_folders,
    "fer2013-csv": read_fer2013_csv,
    "fer2013": read_fer2013_folders,
    "affectnet": read_affectnet,
    "covid": read_covid,
    "ckplus": read_ckplus,
}


def available_formats() -> list[str]:
    """The ``fmt`` values :func:`build_index` accepts."""
    return list(_READERS)


def default_images_dir(index_csv: str | os.PathLike) -> Path:
    """Where ``fer2013-csv`` writes its PNGs by default: ``NAME_images/`` beside ``NAME.csv``."""
    index_csv = Path(index_csv)
    return index_csv.with_name(f"{index_csv.stem}_images")


def build_index(
    fmt: str,
    source: str | Path,
    *,
    val_fraction: float = SplitOptions.val_fraction,
    test_fraction: float = SplitOptions.test_fraction,
    seed: int = SplitOptions.seed,
    class_map: Mapping[str, str] | None = SplitOptions.class_map,
    classes: Sequence[str] | None = SplitOptions.classes,
    images_dir: str | Path | None = None,
    task: str = "classification",
    dedupe: bool = False,
) -> DatasetIndex:
    """Index ``source`` (a folder, or the CSV file for ``fer2013-csv``) read as ``fmt``.

    ``val_fraction``, ``test_fraction``, ``seed``, ``class_map`` and ``classes`` are the
    fields of :class:`SplitOptions` (CK+ is split by subject; face sets' classes get the
    canonical names before ``class_map``). ``images_dir`` is required for ``fer2013-csv``
    (see :func:`default_images_dir`). ``task="regression"`` (valence/arousal) needs
    ``affectnet``. The reader and these options are recorded in ``index.meta["reader"]``.

    Exact duplicates (same file bytes) are counted in ``index.meta["duplicates"]``
    (:func:`duplicate_meta`); ``dedupe`` drops every copy outside its earliest split
    (:data:`POLICY`), listing the dropped rows there.
    """
    if fmt not in _READERS:
        raise ConfigError(f"unknown dataset format {fmt!r}; use one of {available_formats()}")
    if task not in TASKS:
        raise ConfigError(f"task={task!r}: use one of {list(TASKS)}")
    if task == "regression" and fmt != "affectnet":
        raise ConfigError(f"format {fmt!r} has no valence/arousal; task 'regression' needs format 'affectnet'")
    source = Path(source)
    if not source.exists():
        raise DataError(f"dataset source {source} does not exist")
    options = SplitOptions(
        val_fraction, test_fraction, seed,
        class_map=dict(class_map) if class_map else None,
        classes=list(classes) if classes is not None else None,
    )
    extra: dict[str, Any] = {}
    if fmt == "fer2013-csv":
        if images_dir is None:
            raise ConfigError("format 'fer2013-csv' needs images_dir, the folder to write its 48x48 PNGs to")
        extra["images_dir"] = Path(images_dir)
    elif images_dir is not None:
        raise ConfigError(f"images_dir is only used by format 'fer2013-csv', not {fmt!r}; leave it out")
    if fmt == "affectnet":
        extra["task"] = task
    index = _READERS[fmt](source, options=options, **extra)
    groups = find_duplicates(index)
    if dedupe:
        index, _ = drop_duplicates(index, groups)
    else:
        index.meta["duplicates"] = duplicate_meta(groups)
    index.meta["reader"] = {"format": fmt, "source": str(source.resolve()), "task": task, **asdict(options)}
    if images_dir is not None:
        index.meta["reader"]["images_dir"] = str(Path(images_dir).resolve())
    return index
