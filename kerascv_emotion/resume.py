"""Resuming a killed train/tune phase from ``RUN/work/`` (see :mod:`kerascv_emotion.runs`):
repairing a Keras backup cut mid-write and restoring the best value a surviving checkpoint
holds. No TensorFlow import."""

from __future__ import annotations

import logging
import shutil
import zipfile
from pathlib import Path
from typing import Any

from kerascv_emotion.io import read_json
from kerascv_emotion.runs import best_of, phase_history
from kerascv_emotion.tasks import monitor_mode

log = logging.getLogger(__name__)


def _h5_readable(path: Path) -> bool:
    """Whether an HDF5 weights file opens and every dataset in it reads back."""
    import h5py

    def visit(_name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            obj[()]

    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(visit)
    except Exception:  # noqa: BLE001 - any failure means "unusable"
        return False
    return True


def _json_readable(path: Path) -> bool:
    try:
        read_json(path)
    except (OSError, ValueError):
        return False
    return True


def keras_file_readable(path: Path) -> bool:
    """Whether ``path`` is a complete ``.keras`` zip archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def repair_backup(backup: Path) -> None:
    """Make a backup left by a killed run loadable: fall back to the previous copy
    (``double_checkpoint``) when the latest was cut mid-write, or drop it entirely."""
    weights, meta = backup / "latest.weights.h5", backup / "training_metadata.json"
    if not weights.exists() and not meta.exists():
        return
    if weights.exists() and _h5_readable(weights) and _json_readable(meta):
        return
    prev_weights, prev_meta = Path(f"{weights}.bkp"), Path(f"{meta}.bkp")
    if prev_weights.exists() and _h5_readable(prev_weights) and _json_readable(prev_meta):
        log.warning("backup %s was cut mid-write; resuming from the previous epoch's copy", weights)
        shutil.copyfile(prev_weights, weights)
        shutil.copyfile(prev_meta, meta)
        return
    log.warning("backup in %s is unreadable; this phase starts again", backup)
    shutil.rmtree(backup, ignore_errors=True)


def resume_threshold(work: Path, phase: str, monitor: str, best_so_far: float | None) -> float | None:
    """On a resumed phase, the best ``monitor`` value its surviving checkpoint holds (or the
    earlier phases' ``best_so_far`` if better), so the restarted ModelCheckpoint does not
    replace it with a worse epoch. A checkpoint cut mid-write is removed."""
    checkpoint = work / f"best-{phase}.keras"
    if not checkpoint.exists():
        return best_so_far
    if not keras_file_readable(checkpoint):
        checkpoint.unlink()
        return best_so_far
    best = best_of(phase_history(work, phase), monitor)  # rows are logged after the checkpoint
    if best is None:
        return best_so_far
    if best_so_far is None:
        return best[1]
    pick = max if monitor_mode(monitor) == "max" else min
    return float(pick(best[1], best_so_far))
