"""Resuming a killed train/tune phase from ``RUN/work/`` (see :mod:`kerascv_emotion.runs`):
clearing a backup a kill left unusable and restoring the best value a surviving checkpoint
holds. No TensorFlow import."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from kerascv_emotion.runs import best_of, keras_file_readable, phase_history
from kerascv_emotion.tasks import monitor_mode

log = logging.getLogger(__name__)

BACKUP_WEIGHTS = "latest.weights.h5"  # one file: weights, optimizer state, finished epochs
BACKUP_EPOCHS_ATTRIBUTE = "kerascv_emotion_epochs_done"


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


def backup_epochs(weights: Path) -> int | None:
    """The number of finished epochs a phase's backup (``BACKUP_WEIGHTS``, written by
    :class:`kerascv_emotion.callbacks.AtomicBackupAndRestore`) holds, or ``None`` when it
    does not read back completely or lacks the count (a backup from an older version)."""
    if not _h5_readable(weights):
        return None
    import h5py

    with h5py.File(weights, "r") as handle:
        epochs = handle.attrs.get(BACKUP_EPOCHS_ATTRIBUTE)
    return None if epochs is None else int(epochs)


def repair_backup(backup: Path) -> None:
    """Clear what a killed run left in a phase's backup folder: temporary files of a write cut
    short, and a backup that is unusable (the phase then starts again, with a warning)."""
    for partial in backup.glob(f".{Path(BACKUP_WEIGHTS).stem}.*"):
        partial.unlink()
    weights = backup / BACKUP_WEIGHTS
    if weights.exists() and backup_epochs(weights) is None:
        log.warning("backup %s is unreadable or from an older version; this phase starts again", weights)
        shutil.rmtree(backup)


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
