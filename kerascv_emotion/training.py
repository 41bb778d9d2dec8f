"""Training into run directories (:mod:`kerascv_emotion.runs` owns their layout), and the
pieces :mod:`kerascv_emotion.finetune` shares: data, optimizer, callbacks, one resumable phase.

:func:`train` is resumable: a run killed mid-epoch and started again with the same settings
continues from ``RUN/work/backup-<phase>`` (``callbacks.AtomicBackupAndRestore``) and finishes with
all artefacts. Final artefacts are written atomically, so an interrupted run never leaves a
half ``model.keras``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kerascv_emotion import runs
from kerascv_emotion.data.index import DatasetIndex, read_index
from kerascv_emotion.devices import device_record, library_versions
from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.io import read_json, write_json
from kerascv_emotion.priors import CLASS_PRIOR_KEY, class_prior, shift_output_bias
from kerascv_emotion.resume import repair_backup, resume_threshold
from kerascv_emotion.settings import TrainSettings
from kerascv_emotion.tasks import REGRESSION_NAMES, default_monitor, monitor_mode

log = logging.getLogger(__name__)

SGD_MOMENTUM = 0.9  # Nesterov momentum of optimizer="sgd"


def resolved(settings: TrainSettings) -> TrainSettings:
    """``settings`` as a run stores them: absolute ``index``/``cache_dir`` (so the run works
    from any working directory) and an explicit ``monitor``."""
    return dataclasses.replace(
        settings, index=os.path.abspath(settings.index), monitor=settings.monitor or default_monitor(settings.task),
        cache_dir=os.path.abspath(settings.cache_dir) if settings.cache_dir else None)


def check_monitor(settings: TrainSettings, output_names: Sequence[str]) -> None:
    """A one-line :class:`ConfigError` unless ``settings.monitor`` is a value every epoch logs:
    the training loss and compiled metric, or a ``val_*`` name of PerClassMetrics."""
    from kerascv_emotion.callbacks import log_names

    compiled = ["loss", "accuracy"] if settings.task == "classification" else ["loss", "mae"]
    names = compiled + log_names(settings.task, output_names)
    if (settings.monitor or default_monitor(settings.task)) not in names:
        shown = [n for n in names if "/" not in n]
        raise ConfigError(f"monitor={settings.monitor!r} is not a metric of a {settings.task} run; "
                          f"use one of {', '.join(shown)} or a per-class one such as {names[-1]!r}")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; with ``deterministic``, also TensorFlow op
    determinism (bit-identical reruns, at a throughput cost measured in benchmarks/README.md)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def _configure_precision(mixed: bool) -> bool:
    """Use ``mixed_float16`` when asked and a GPU is present; returns whether it is on."""
    import keras
    import tensorflow as tf

    if not mixed:
        return False
    if not tf.config.list_physical_devices("GPU"):
        log.warning("mixed precision asked for but no GPU is visible; training in float32")
        return False
    keras.mixed_precision.set_global_policy("mixed_float16")
    return True


def make_optimizer(settings: TrainSettings, learning_rate: float, steps_per_epoch: int, epochs: int) -> Any:
    """The Keras optimizer of ``settings``: Adam (the paper's), AdamW, or SGD with Nesterov
    momentum; a constant rate, or cosine decay to 0 over ``epochs`` after a linear warm-up of
    ``settings.warmup_epochs`` from 0. ``weight_decay`` is decoupled (Keras's own);
    ``ema_momentum`` > 0 keeps Keras's moving average of the weights (``use_ema``), which
    :class:`~kerascv_emotion.callbacks.EMAWeights` validates and saves."""
    import keras

    rate: Any = learning_rate
    if settings.lr_schedule == "cosine":
        warmup = settings.warmup_epochs * steps_per_epoch
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else learning_rate,
            decay_steps=max(1, (epochs - settings.warmup_epochs) * steps_per_epoch),
            warmup_target=learning_rate if warmup else None, warmup_steps=warmup)
    decay = settings.weight_decay or None
    ema = {"use_ema": True, "ema_momentum": settings.ema_momentum} if settings.ema_momentum else {}
    if settings.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=SGD_MOMENTUM, nesterov=True, weight_decay=decay, **ema)
    if settings.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=settings.weight_decay, **ema)
    return keras.optimizers.Adam(rate, weight_decay=decay, **ema)


def compile_model(model: Any, settings: TrainSettings, optimizer: Any) -> None:
    import keras

    if settings.task == "classification":
        binary = model.output_shape[-1] == 1
        loss_class = keras.losses.BinaryCrossentropy if binary else keras.losses.CategoricalCrossentropy
        loss = loss_class(label_smoothing=settings.label_smoothing)
        metrics = ["accuracy"]
    else:
        loss, metrics = keras.losses.MeanSquaredError(), ["mae"]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)


def stream_seed(seed: int, source_weights: Sequence[Any] | None = None) -> int:
    """The seed of a run's random streams (batch order, augmentation, dropout noise): ``seed``
    for a model trained from scratch; for a model tuned from another, ``seed`` mixed with the
    SHA-256 of the source model's weights (``source_weights``, its ``model.weights``, in order).
    With the bare seed, tune's epoch 0 replayed the very batches and dropout masks that the
    source run's epoch 0 had fitted the model to, and its history logged a memorised training
    accuracy (1.0 where the saved model scores 0.25). The weights, not the ``.keras`` file's
    bytes, are hashed: the file holds save times, so the same weights saved twice differ."""
    if source_weights is None:
        return seed
    digest = hashlib.sha256()
    for weight in source_weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return int(np.random.SeedSequence([seed, int(digest.hexdigest()[:16], 16)]).generate_state(1)[0])


@dataclass
class TrainData:
    train: Any
    val: Any
    class_names: list[str]
    output_names: list[str]
    skipped: list[dict[str, str]]
    counts: dict[str, int]
    stream_seed: int  # seeds the batches and the dropout noise (:func:`stream_seed`)


def _check_training_splits(index: DatasetIndex, path: str) -> None:
    """A one-line DataError, with the fix that applies, unless the index has train and val rows."""
    if not index.records:
        raise DataError(f"index {path} has no rows; rebuild it with `kerascv-emotion index ROOT --out {path}`")
    present = index.splits()
    if "train" not in present:
        raise DataError(f"index {path} has no 'train' rows (only {', '.join(present)}); training needs them: "
                        "give it train rows, or rebuild it from ROOT/<class>/* with `kerascv-emotion index`")
    if "val" not in present:
        raise DataError(f"index {path} has no 'val' rows (the best epoch is chosen on them); rebuild it with "
                        "`kerascv-emotion index ... --val-fraction 0.1` (or any fraction > 0)")


def _warn_missing_classes(index: Any, train_ids: np.ndarray, val_ids: np.ndarray) -> None:
    """One warning line per kind of missing class: classes of ``index`` with no
    image in any split, with no usable training image, with no usable validation image (the
    monitored ``val_macro_f1`` then averages the classes present, see
    :func:`~kerascv_emotion.callbacks.per_class.present_macro_f1`)."""
    names = list(index.class_names)
    k = len(names)
    anywhere = set(index.label_ids().tolist())
    nowhere = [n for i, n in enumerate(names) if i not in anywhere]
    counts = {split: np.bincount(ids, minlength=k) for split, ids in (("train", train_ids), ("val", val_ids))}
    no_train = [n for i, n in enumerate(names) if counts["train"][i] == 0 and n not in nowhere]
    no_val = [n for i, n in enumerate(names) if counts["val"][i] == 0 and n not in nowhere]
    present = int((counts["val"] > 0).sum())
    lines = [f"{len(found)} of {k} classes {what}: {', '.join(found)}; {then}" for found, what, then in (
        (nowhere, "have no images in the index at all",
         "the model cannot learn them (drop them from the index's class_names or add images)"),
        (no_train, "have no usable training images", "the model cannot learn them"),
        (no_val, "have no usable validation images",
         f"val_macro_f1 averages the {present} classes present in validation"),
    ) if found]
    for line in lines:
        log.warning(line)


def load_data(settings: TrainSettings, seed: int | None = None, refresh_cache: bool = False) -> TrainData:
    """Cache and stream the train and val splits of ``settings.index`` (after checking the
    index and ``settings.monitor``, so that a bad one is refused before any decoding); the
    training batches are drawn from ``seed`` (default ``settings.seed``; see :func:`stream_seed`).
    ``refresh_cache`` decodes every image again instead of reusing the image cache."""
    from kerascv_emotion.data.cache import cache_dir_for, load_split
    from kerascv_emotion.data.loader import ImageBatches, class_weights

    index = read_index(settings.index)
    _check_training_splits(index, settings.index)
    if settings.task == "regression" and not index.has_valence_arousal:
        raise DataError(f"index {settings.index} lacks valence/arousal for some rows; a regression run needs them")
    outputs = list(index.class_names) if settings.task == "classification" else list(REGRESSION_NAMES)
    check_monitor(settings, outputs)
    cache_dir = cache_dir_for(settings.cache_dir, settings.index)
    train_split, val_split = (
        load_split(index, split, settings.image_size, settings.channels, cache_dir=cache_dir,
                   on_bad_image=settings.on_bad_image, max_pixels=settings.max_pixels, refresh=refresh_cache)
        for split in ("train", "val"))
    if len(train_split.label_ids) == 0 or len(val_split.label_ids) == 0:
        raise DataError(f"index {settings.index}: no usable train or val images after skipping bad files")
    if settings.task == "classification":
        _warn_missing_classes(index, train_split.label_ids, val_split.label_ids)
    seed = settings.seed if seed is None else seed
    weights = None
    if settings.task == "classification" and settings.class_weight == "balanced":
        weights = class_weights(train_split.label_ids, index.num_classes)
    train = ImageBatches(train_split, batch_size=settings.batch_size, task=settings.task,
                         augment=settings.augment, shuffle=True, seed=seed,
                         class_weight=weights, workers=settings.workers,
                         mixup_alpha=settings.mixup_alpha, cutmix_alpha=settings.cutmix_alpha)
    val = ImageBatches(val_split, batch_size=max(settings.batch_size, 64), task=settings.task,
                       augment=None, shuffle=False, seed=seed, workers=settings.workers)
    return TrainData(
        train=train, val=val, class_names=list(index.class_names), output_names=outputs,
        skipped=list(train_split.skipped) + list(val_split.skipped),
        counts={"train": int(len(train_split.label_ids)), "val": int(len(val_split.label_ids))},
        stream_seed=seed,
    )


EPOCH_SECONDS = "epoch_seconds"  # history column: wall seconds of the epoch, validation and checkpoint included


def _epoch_logger(phase: str, monitor: str, verbose: int) -> Any:
    """Records each epoch's wall time in its logs (:data:`EPOCH_SECONDS`, so history.csv holds
    it) and prints one short line per epoch (Keras's own progress bar would print every
    per-class value)."""
    import time

    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds = time.perf_counter() - self._start
            if logs is not None:
                logs[EPOCH_SECONDS] = seconds
            if not verbose:
                return
            logs = logs or {}
            shown = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy", monitor) if k in logs]
            values = " - ".join(f"{k}: {float(logs[k]):.4f}" for k in dict.fromkeys(shown))
            total = self.params.get("epochs", "?")
            print(f"Epoch {epoch + 1}/{total} [{phase}] {seconds:.1f}s - {values}",
                  flush=True)

    return EpochLog()


RATE_SETTINGS = {"train": "learning_rate", "head": "head_learning_rate", "finetune": "finetune_learning_rate"}
"""The setting that holds each phase's learning rate (named when a phase diverges)."""


def _callbacks(settings: TrainSettings, data: TrainData, work: Path, phase: str, learning_rate: float,
               best_so_far: float | None, verbose: int) -> tuple[list[Any], Any]:
    """Keras's own callbacks behind PerClassMetrics; returns them and the (atomic) ModelCheckpoint.

    EpochSeededNoise reseeds the dropout layers per epoch (a resumed run draws the noise an
    uninterrupted one draws); with ``ema_momentum`` EMAWeights swaps the weight EMA in before
    everything that validates or saves the model and the raw weights back before the resume
    backup; PreciseBatchNorm (unless ``precise_bn_images`` is 0) comes before
    validation, so validation and the checkpoint see inference-mode statistics; PerClassMetrics
    next, so that every later callback sees its ``val_*`` values; StopOnDivergence then ends a
    phase whose loss is NaN or infinite (naming ``learning_rate``) before anything is saved.
    ``best_so_far`` (the previous phase's best) is the checkpoint's starting threshold, so
    a later phase only replaces the model when it beats every earlier epoch.
    """
    import keras

    from kerascv_emotion.callbacks import (
        AtomicBackupAndRestore,
        AtomicModelCheckpoint,
        EMAWeights,
        EpochSeededNoise,
        PerClassMetrics,
        PreciseBatchNorm,
        StopOnDivergence,
    )

    monitor, mode = settings.monitor, monitor_mode(settings.monitor)
    checkpoint = AtomicModelCheckpoint(
        work / f"best-{phase}.keras", monitor=monitor, mode=mode, save_best_only=True,
        initial_value_threshold=best_so_far,
    )
    ema = EMAWeights() if settings.ema_momentum else None
    callbacks: list[Any] = [EpochSeededNoise(data.stream_seed)] + ([ema.swap_in] if ema else [])
    if settings.precise_bn_images:
        callbacks.append(PreciseBatchNorm(data.train, settings.precise_bn_images))
    callbacks += [
        PerClassMetrics(data.val, class_names=data.output_names, task=settings.task, log_dir=work / phase),
        StopOnDivergence(f"{RATE_SETTINGS[phase]}={learning_rate:g}"),
        checkpoint,
        *([ema.swap_out] if ema else []),
        _epoch_logger(phase, monitor, verbose),
        keras.callbacks.CSVLogger(str(work / f"history-{phase}.csv"), append=True),
        AtomicBackupAndRestore(work / f"backup-{phase}"),
    ]
    if settings.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=settings.patience))
    if settings.reduce_lr_patience:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode,
                                                           patience=settings.reduce_lr_patience, factor=0.5))
    if settings.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(work.parent / "tensorboard" / phase)))
    return callbacks, checkpoint


@dataclass
class PhaseResult:
    checkpoint: Path | None  # best model of this phase, None if it never beat the previous best
    best: float | None       # best monitored value so far (this phase and earlier ones)


def phase_done_file(work: Path, phase: str) -> Path:
    """The file in ``work`` that records a finished ``phase`` (its checkpoint and best score);
    :func:`fit_phase` skips a phase that has one."""
    return work / f"{phase}.done.json"


def fit_phase(model: Any, settings: TrainSettings, data: TrainData, work: Path, phase: str, learning_rate: float,
              initial_epoch: int, epochs: int, best_so_far: float | None, verbose: int) -> PhaseResult:
    """Fit one phase at ``learning_rate`` (its optimizer's peak rate), or skip it when a
    previous (killed) invocation already finished it. A NaN or infinite loss raises
    :class:`~kerascv_emotion.errors.TrainingDiverged`."""
    done = phase_done_file(work, phase)
    if done.is_file():
        state = read_json(done)
        return PhaseResult(Path(state["checkpoint"]) if state["checkpoint"] else None, state["best"])
    repair_backup(work / f"backup-{phase}")
    best_so_far = resume_threshold(work, phase, settings.monitor, best_so_far)
    callbacks, checkpoint = _callbacks(settings, data, work, phase, learning_rate, best_so_far, verbose)
    # fed through tf.data (a PyDataset costs ~2x the epoch time on CPU); the batches shuffle
    # themselves, seeded per epoch, so Keras must not reorder them again
    try:
        model.fit(data.train.as_tf_dataset(), steps_per_epoch=len(data.train), epochs=initial_epoch + epochs,
                  initial_epoch=initial_epoch, callbacks=[data.train.epoch_callback(), *callbacks], verbose=0,
                  shuffle=False)
    finally:  # CSVLogger closes its file only at a training's normal end (not after a full disk, a NaN)
        for callback in callbacks:
            log_file = getattr(callback, "csv_file", None)
            if log_file is not None and not log_file.closed:
                log_file.close()
    path = checkpoint.final_path
    raw = checkpoint.best
    best = float(raw) if raw is not None and np.isfinite(raw) else best_so_far
    result = PhaseResult(path if path.is_file() else None, best)
    write_json(done, {"checkpoint": str(result.checkpoint) if result.checkpoint else None, "best": result.best})
    return result


def _prior_corrected(checkpoint: Path, work: Path, data: TrainData) -> tuple[Path, list[float]]:
    """``checkpoint``'s model with the training split's log class frequencies added to its output
    bias (:mod:`kerascv_emotion.priors`), saved beside it; returns its path and the frequencies."""
    prior = class_prior(data.train.cached.label_ids, len(data.output_names))
    model = runs.load_model(checkpoint)
    shift_output_bias(model, prior)
    corrected = work / "prior-corrected.keras"
    model.save(corrected)
    return corrected, prior.tolist()


def finish_run(run_dir: Path, work: Path, checkpoint: Path | None, phase_names: Sequence[str],
               settings: TrainSettings, data: TrainData, model: Any, **extra: Any) -> None:
    """The run's final artefacts (:func:`kerascv_emotion.runs.finish`) with every setting,
    the data's classes and counts, the parameter count and library versions in ``config.json``;
    then a classification run's temperature (:func:`kerascv_emotion.temperature.fit_run_temperature`).
    With ``settings.prior_correction`` the promoted model is the best checkpoint's prior-corrected copy."""
    if checkpoint is None:
        raise DataError(f"{run_dir} never produced a finite {settings.monitor}; see {work}")
    if data.skipped:
        log.warning("%d image(s) skipped; listed in %s", len(data.skipped), run_dir / "skipped_images.json")
    if settings.prior_correction:
        checkpoint, extra[CLASS_PRIOR_KEY] = _prior_corrected(checkpoint, work, data)
    config = {**dataclasses.asdict(settings), "class_names": data.class_names, "output_names": data.output_names,
              "params": int(model.count_params()), "samples": data.counts, "versions": library_versions(),
              "devices": device_record(), **extra}
    runs.finish(run_dir, work, checkpoint, phase_names, config, data.output_names, data.skipped)
    if settings.task == "classification":
        from kerascv_emotion.temperature import fit_run_temperature

        fit_run_temperature(run_dir, data.val.cached, data.val.batch_size)


def train(settings: TrainSettings, out_dir: str | os.PathLike, verbose: int = 2, restart: bool = False,
          refresh_cache: bool = False) -> Path:
    """Train ``settings.arch`` on ``settings.index`` into the run directory ``out_dir``.

    ``settings.optimizer`` at ``settings.learning_rate`` (:func:`make_optimizer`); categorical
    cross-entropy (with ``label_smoothing``) weighted by "balanced"
    class weights (or MSE on valence/arousal for ``task="regression"``); validation by
    PerClassMetrics; the best epoch by ``settings.monitor`` (default ``val_macro_f1`` /
    ``val_ccc_mean``) is kept as ``model.keras``. A killed run resumes when started again
    with the same settings; ``restart`` discards its state instead. ``refresh_cache`` decodes
    every image again instead of reusing the image cache. Returns the run directory.
    """
    from kerascv_emotion.models import build_model, check_model_options

    settings.check()
    check_model_options(settings.arch, settings.arch_kwargs)
    settings = resolved(settings)
    run_dir = Path(out_dir)
    with runs.claim(run_dir, dataclasses.asdict(settings), restart=restart) as work:
        seed_everything(settings.seed, settings.deterministic)
        _configure_precision(settings.mixed_precision)  # the "predictions" layer stays float32
        data = load_data(settings, refresh_cache=refresh_cache)
        model = build_model(settings.arch, input_shape=(settings.image_size, settings.image_size, settings.channels),
                            num_classes=len(data.output_names), head=settings.task, **settings.arch_kwargs)
        compile_model(model, settings, make_optimizer(settings, settings.learning_rate, len(data.train), settings.epochs))
        result = fit_phase(model, settings, data, work, "train", settings.learning_rate, 0, settings.epochs,
                           None, verbose)
        finish_run(run_dir, work, result.checkpoint, ["train"], settings, data, model,
                   phases=[{"name": "train", "first_epoch": 0, "epochs": settings.epochs,
                            "learning_rate": settings.learning_rate}])
    return run_dir
