"""The per-phase backup a killed run resumes from: one file, replaced atomically, whose epoch
count always belongs to its weights; and the repair of what a kill leaves behind."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from kerascv_emotion.callbacks import AtomicBackupAndRestore
from kerascv_emotion.callbacks import resumable as resumable_module
from kerascv_emotion.resume import BACKUP_WEIGHTS, backup_epochs, repair_backup


def _model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def _train_step(model: keras.Model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    model.train_on_batch(rng.random((8, 4), dtype=np.float32), np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)])


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [w.numpy().copy() for w in model.weights + model.optimizer.variables]


def _backup(model: keras.Model, folder: Path, epochs_done: int) -> AtomicBackupAndRestore:
    callback = AtomicBackupAndRestore(folder)
    callback.set_model(model)
    callback.on_epoch_end(epochs_done - 1)
    return callback


def test_backup_restores_weights_optimizer_and_epoch(tmp_path: Path) -> None:
    model = _model()
    _train_step(model, 0)
    _backup(model, tmp_path / "backup", epochs_done=3)
    assert backup_epochs(tmp_path / "backup" / BACKUP_WEIGHTS) == 3
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == [BACKUP_WEIGHTS]

    fresh = _model()
    _train_step(fresh, 1)  # builds the optimizer, different values
    restore = AtomicBackupAndRestore(tmp_path / "backup")
    restore.set_model(fresh)
    restore.on_train_begin()
    assert fresh._initial_epoch == 3
    for a, b in zip(_weights(model), _weights(fresh), strict=True):
        np.testing.assert_array_equal(a, b)


def test_save_cut_before_the_epoch_count_keeps_the_previous_epoch(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The defect of Keras's BackupAndRestore: weights written, epoch count not yet; a resumed
    run would train that epoch twice. Here the previous (weights, count) pair survives whole."""
    model = _model()
    _train_step(model, 0)
    callback = _backup(model, tmp_path / "backup", epochs_done=1)
    after_one = _weights(model)
    _train_step(model, 1)

    class Killed(BaseException):
        pass

    def killed(*_args: object, **_kwargs: object) -> None:
        raise Killed

    monkeypatch.setattr(resumable_module.h5py, "File", killed)
    with pytest.raises(Killed):
        callback.on_epoch_end(1)
    monkeypatch.undo()
    weights = tmp_path / "backup" / BACKUP_WEIGHTS
    assert backup_epochs(weights) == 1
    fresh = _model()
    _train_step(fresh, 2)
    restore = AtomicBackupAndRestore(tmp_path / "backup")
    restore.set_model(fresh)
    restore.on_train_begin()
    assert fresh._initial_epoch == 1
    for a, b in zip(after_one, _weights(fresh), strict=True):
        np.testing.assert_array_equal(a, b)


def test_repair_removes_partial_writes_and_unusable_backups(tmp_path: Path) -> None:
    model = _model()
    _train_step(model, 0)
    folder = tmp_path / "backup"
    _backup(model, folder, epochs_done=2)
    partial = folder / f".{Path(BACKUP_WEIGHTS).stem}.x1y2.weights.h5"
    partial.write_bytes(b"\x89HDF cut short")
    repair_backup(folder)
    assert not partial.exists() and backup_epochs(folder / BACKUP_WEIGHTS) == 2

    (folder / BACKUP_WEIGHTS).write_bytes((folder / BACKUP_WEIGHTS).read_bytes()[:200])  # cut mid-write
    repair_backup(folder)
    assert not folder.exists()

    older = tmp_path / "older"  # Keras's own two-file backup, from before this format
    older.mkdir()
    model.save_weights(str(older / BACKUP_WEIGHTS))
    repair_backup(older)
    assert not older.exists()
