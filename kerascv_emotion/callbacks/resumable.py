"""Callbacks that make a killed and resumed run end where an uninterrupted one ends: a
checkpoint and a backup that are never half-written, and dropout noise that depends only on
``(seed, epoch)``. :mod:`kerascv_emotion.resume` repairs what a kill leaves behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

from kerascv_emotion.batchnorm_statistics import nested_layers
from kerascv_emotion.errors import TrainingDiverged
from kerascv_emotion.io import atomic_path
from kerascv_emotion.resume import BACKUP_EPOCHS_ATTRIBUTE, BACKUP_WEIGHTS, backup_epochs


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keras's ``ModelCheckpoint`` whose file is never half-written: Keras saves into a hidden
    temporary ``.keras`` beside ``filepath`` and the epoch's end renames it into place, so a kill
    or a full disk mid-save leaves the previous checkpoint intact; a failed save removes the
    temporary and names ``filepath`` (a SIGKILL may leave it, the next save replaces it).
    An epoch whose monitored value is NaN or infinite is never saved (Keras's own saves the
    first epoch whatever its value).
    ``filepath`` is the final path; every other argument is ``ModelCheckpoint``'s. Of a
    ``keras.distillation.Distiller`` it saves the student (the model a distillation makes)."""

    def __init__(self, filepath: str | Path, **kwargs: Any) -> None:
        self.final_path = Path(filepath)
        self.temporary_path = self.final_path.with_name(f".{self.final_path.stem}.partial.keras")
        super().__init__(self.temporary_path, **kwargs)

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model.student if isinstance(model, keras.distillation.Distiller) else model)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is not None and not np.isfinite(float(value)):
            return  # a NaN or infinite monitor is never an improvement, nor a model worth keeping
        try:
            super().on_epoch_end(epoch, logs)
        except BaseException as exc:  # a full disk, a kill: no partial file left to fill the disk
            self.temporary_path.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno is not None:
                exc.filename, exc.filename2 = str(self.final_path), None
            raise
        if self.temporary_path.is_file():
            self.temporary_path.replace(self.final_path)


class StopOnDivergence(keras.callbacks.Callback):
    """Raise :class:`~kerascv_emotion.errors.TrainingDiverged` as soon as the training loss
    (after any batch) or the validation loss (at an epoch's end; place this after
    :class:`PerClassMetrics`) is NaN or infinite. Keras's ``TerminateOnNaN`` only stops the
    fit, which then ends "successfully" with a NaN model. ``rate`` names the learning-rate
    setting (and value) the message tells the user to lower."""

    def __init__(self, rate: str) -> None:
        super().__init__()
        self.rate = rate
        self._epoch = 0

    def _check(self, logs: dict[str, Any] | None, key: str, what: str, where: str) -> None:
        value = (logs or {}).get(key)
        if value is not None and not np.isfinite(float(value)):
            raise TrainingDiverged(f"training diverged: the {what} became {float(value)} {where}epoch "
                                   f"{self._epoch + 1}; nothing was kept; lower the learning rate "
                                   f"({self.rate}) or check the data")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._check(logs, "loss", "training loss", f"at batch {batch + 1} of ")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._check(logs, "val_loss", "validation loss", "after ")


class EpochSeededNoise(keras.callbacks.Callback):
    """At each epoch's start, set the state of every ``keras.random.SeedGenerator`` held by the
    model's layers (Dropout, GaussianDropout, ...) from ``(seed, epoch, layer order)``, so an
    epoch's dropout noise depends on nothing else: a run resumed from a backup (which restores
    weights and optimizer, not random state) draws what an uninterrupted run draws."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = int(seed)

    def _generators(self) -> list[keras.random.SeedGenerator]:
        return [value for layer in nested_layers(self.model) for value in vars(layer).values()
                if isinstance(value, keras.random.SeedGenerator)]

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for index, generator in enumerate(self._generators()):
            drawn = np.random.SeedSequence([self.seed, int(epoch), index]).generate_state(1)[0]
            state = np.array([drawn, 0], dtype=keras.backend.standardize_dtype(generator.state.dtype))
            generator.state.assign(state)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's ``BackupAndRestore`` (back up at every epoch's end, restore at ``fit``'s start,
    delete at its end) with a backup that is ONE file replaced atomically:
    ``backup_dir/latest.weights.h5`` holds the weights, the optimizer state and, as an HDF5
    attribute, the number of finished epochs.

    Keras's own writes the weights and then a metadata JSON: a kill between the two leaves
    epoch N's weights beside a count of N - 1, and the resumed run trains epoch N twice.
    """

    def __init__(self, backup_dir: str | Path) -> None:
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=True)
        self._weights_path = str(Path(backup_dir) / BACKUP_WEIGHTS)

    def _save_model(self) -> None:
        with atomic_path(self._weights_path, suffix=".weights.h5") as partial:
            self.model.save_weights(str(partial), overwrite=True)
            with h5py.File(partial, "r+") as handle:
                handle.attrs[BACKUP_EPOCHS_ATTRIBUTE] = self._current_epoch

    def _load_model(self) -> None:
        path = Path(self._weights_path)
        if not path.exists():
            return
        epochs_done = backup_epochs(path)
        if epochs_done is None:
            raise OSError(f"{path} is not a complete backup; delete it (or the run's work/ folder) "
                          "to start this phase again")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(path))
        self.model._initial_epoch = epochs_done

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._load_model()
