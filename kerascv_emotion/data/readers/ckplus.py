"""CK+ (Lucey et al. 2010) as class folders, e.g. CK+48: ``ROOT/<class>/S005_001_00000011.png``.

The subject id (``S005``) is read from each file name and stored in the index's ``group``
column; splits are made subject-wise, so no subject's face is in two splits.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace
from pathlib import Path, PurePosixPath

from kerascv_emotion.data.index import DEFAULT_SPLIT_OPTIONS, DatasetIndex, SplitOptions
from kerascv_emotion.data.readers.common import make_index
from kerascv_emotion.data.readers.folders import folder_entries
from kerascv_emotion.errors import DataError

SUBJECT_PATTERN = re.compile(r"^(S\d+)_", re.IGNORECASE)


def subject_id(path: str) -> str:
    """``"anger/S005_001_00000011.png"`` -> ``"S005"``; :class:`DataError` if the name has none."""
    match = SUBJECT_PATTERN.match(PurePosixPath(path).name)
    if match is None:
        raise DataError(
            f"CK+ image {path}: cannot read a subject id from the file name; "
            "CK+ names start with the subject, e.g. S005_001_00000011.png"
        )
    return match.group(1).upper()


def read_ckplus(root: str | Path, options: SplitOptions = DEFAULT_SPLIT_OPTIONS) -> DatasetIndex:
    """Index CK+ class folders with a seeded subject-wise split (``group`` = subject id).

    The fractions are of images, met approximately since whole subjects move together.
    Class names are mapped to the canonical ones (``sadness`` -> ``sad``). A layout that
    already has split folders is kept, but must not put a subject in two splits.
    """
    root = Path(root)
    found_records, found = folder_entries(root)
    entries = [replace(e, group=subject_id(e.path)) for e in found_records]
    splits_of: dict[str, set[str]] = defaultdict(set)
    for e in entries:
        splits_of[str(e.group)].add(e.split)
    leaking = sorted(g for g, s in splits_of.items() if len(s) > 1)
    if leaking:
        raise DataError(
            f"{root}: subjects {leaking[:5]} appear in more than one split folder; "
            "CK+ must be split by subject (use the class folders without split folders)"
        )
    index = make_index(
        root, entries, source=root, options=options, canonical=True, by_group=True,
        meta={"source": "ckplus", **found},
    )
    index.meta["subjects"] = len({r.group for r in index.records})
    return index
