"""Exact-duplicate images by content hash, and the leak-free removal policy.

A duplicate group is two or more index rows whose files have the same SHA-256 (of the
file bytes, or optionally of the decoded pixels, which also catches re-encoded copies
without lossy changes). Removal keeps every copy in the group's earliest split
(train < val < test) and drops the copies in later splits, so evaluation never sees a
training image; groups whose copies disagree on the label are flagged ``conflicting``.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from kerascv_emotion.data.index import SPLITS, DatasetIndex
from kerascv_emotion.errors import BadImageError, DataError

POLICY = "keep the copies in the earliest split (train < val < test), drop those in later splits"
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of the file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def pixel_sha256(path: Path) -> str:
    """Hex SHA-256 of the decoded image: its mode, size (W x H) and raw pixel bytes."""
    try:
        with Image.open(path) as img:
            img.load()
            h = hashlib.sha256(f"{img.mode}:{img.width}x{img.height}:".encode())
            h.update(img.tobytes())
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BadImageError(str(path), f"cannot decode to hash its pixels ({exc})") from None
    return h.hexdigest()


def find_duplicates(index: DatasetIndex, workers: int | None = None, *, pixels: bool = False) -> list[dict[str, Any]]:
    """Groups of index rows with identical content, in index order.

    Each group is ``{"sha256", "paths", "splits", "labels", "cross_split",
    "conflicting_labels"}`` (``paths``/``splits``/``labels`` are parallel lists). Files are
    hashed once each, on ``workers`` threads (default: CPU count, at most 8); with
    ``pixels=True`` the hash is of the decoded pixels rather than the file bytes.
    """
    paths = list(dict.fromkeys(r.path for r in index.records))
    for rel in paths:
        if not (index.root / rel).is_file():
            raise DataError(f"image {index.root / rel} (index row {rel!r}) does not exist; rebuild the index")
    digest = pixel_sha256 if pixels else file_sha256
    n_workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        hashes = dict(zip(paths, pool.map(lambda rel: digest(index.root / rel), paths), strict=True))
    members: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(index.records):
        members[hashes[rec.path]].append(i)
    groups: list[dict[str, Any]] = []
    for sha, rows in members.items():
        if len(rows) < 2:
            continue
        recs = [index.records[i] for i in rows]
        groups.append({
            "sha256": sha,
            "paths": [r.path for r in recs],
            "splits": [r.split for r in recs],
            "labels": [r.label for r in recs],
            "cross_split": len({r.split for r in recs}) > 1,
            "conflicting_labels": len({r.label for r in recs}) > 1,
        })
    return groups


def duplicate_summary(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts for a report: groups, images in them, surplus copies, groups spanning splits
    (overall and per split combination, e.g. ``"train+val"``) and with conflicting labels."""
    combos = Counter(
        "+".join(s for s in SPLITS if s in set(g["splits"])) for g in groups if g["cross_split"]
    )
    return {
        "groups": len(groups),
        "images": sum(len(g["paths"]) for g in groups),
        "extra_copies": sum(len(g["paths"]) - 1 for g in groups),
        "cross_split_groups": sum(g["cross_split"] for g in groups),
        "cross_split_by_splits": dict(sorted(combos.items())),
        "conflicting_groups": sum(g["conflicting_labels"] for g in groups),
        "conflicting_cross_split_groups": sum(g["conflicting_labels"] and g["cross_split"] for g in groups),
    }


def duplicate_meta(groups: list[dict[str, Any]], dropped: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An index's ``meta["duplicates"]``: :func:`duplicate_summary`'s counts, ``policy`` (the
    :data:`POLICY` applied, or None when the duplicates were kept) and ``dropped`` (the rows
    :func:`drop_duplicates` removed; empty when kept)."""
    return {**duplicate_summary(groups), "policy": None if dropped is None else POLICY, "dropped": dropped or []}


def drop_duplicates(index: DatasetIndex, groups: list[dict[str, Any]]) -> tuple[DatasetIndex, list[dict[str, Any]]]:
    """Apply :data:`POLICY` to the groups of :func:`find_duplicates`.

    Returns the new index (its ``meta["duplicates"]`` is :func:`duplicate_meta`'s) and one
    dict per dropped row: ``path``, ``split``, ``label``, ``sha256``, ``kept_split``,
    ``conflicting_labels``.
    """
    rank = {s: i for i, s in enumerate(SPLITS)}
    drop: set[tuple[str, str]] = set()
    dropped: list[dict[str, Any]] = []
    for g in groups:
        kept = min(g["splits"], key=rank.__getitem__)
        for path, split, label in zip(g["paths"], g["splits"], g["labels"], strict=True):
            if rank[split] > rank[kept]:
                drop.add((path, split))
                dropped.append({
                    "path": path, "split": split, "label": label, "sha256": g["sha256"],
                    "kept_split": kept, "conflicting_labels": g["conflicting_labels"],
                })
    result = index.with_records(r for r in index.records if (r.path, r.split) not in drop)
    result.meta["duplicates"] = duplicate_meta(groups, dropped)
    return result, dropped
