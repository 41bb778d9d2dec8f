"""Training and two-phase fine-tuning ("tune and train") into run directories.

A run directory (see ``docs/architecture.md``) holds ``config.json`` (every setting, the
seed and library versions), ``class_names.json``, ``model.keras`` (the best epoch by the
monitored metric), ``history.csv`` (one row per epoch, a ``phase`` column) and
``metrics_log.jsonl`` (the per-epoch record of :class:`~kerascv_emotion.callbacks.PerClassMetrics`).

Both :func:`train` and :func:`tune` are resumable: a run killed mid-epoch and started again
with the same arguments continues from ``RUN/work/backup-<phase>`` (Keras's
``BackupAndRestore``) and finishes with all artefacts. Final artefacts are written
atomically, so an interrupted run never leaves a half ``model.keras``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import platform
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kerascv_emotion.batchnorm import DEFAULT_IMAGES as PRECISE_BN_IMAGES
from kerascv_emotion.devices import device_record
from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.io import atomic_open, atomic_path, read_json, write_json

log = logging.getLogger(__name__)

TASKS = ("classification", "regression")
REGRESSION_NAMES = ("valence", "arousal")
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")
SGD_MOMENTUM = 0.9  # Nesterov momentum of optimizer="sgd"


@dataclass
class TrainSettings:
    """Every setting of one training phase; stored in ``config.json``."""

    arch: str
    index: str
    task: str = "classification"
    image_size: int = 64
    channels: int = 3
    epochs: int = 10
    batch_size: int = 32
    augment: str | dict | None = "paper_face"
    seed: int = 0
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    class_weight: str | None = "balanced"
    monitor: str | None = None
    patience: int | None = None
    reduce_lr_patience: int | None = None
    precise_bn_images: int = PRECISE_BN_IMAGES
    on_bad_image: str = "skip"
    max_pixels: int | None = None  # decoder's pixel limit (None: Pillow's, about 89 megapixels)
    workers: int = 1
    cache_dir: str | None = None
    tensorboard: bool = False
    mixed_precision: bool = False
    deterministic: bool = False
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise :class:`ConfigError` (one line, naming the setting) for a value that cannot train."""
        _check_choice("task", self.task, TASKS)
        _check_choice("on_bad_image", self.on_bad_image, ("skip", "fail"))
        _check_choice("class_weight", self.class_weight, ("balanced", None))
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.epochs < 1 or self.batch_size < 1 or self.image_size < 8:
            raise ConfigError("epochs and batch_size must be >= 1 and image_size >= 8")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate={self.learning_rate}: give a positive learning rate")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay={self.weight_decay}: give 0 or a positive decay")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing={self.label_smoothing}: give a value in [0, 1)")
        if self.label_smoothing and self.task != "classification":
            raise ConfigError("label_smoothing applies to classification only")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"warmup_epochs={self.warmup_epochs}: give 0 .. epochs-1 ({self.epochs - 1})")
        if self.warmup_epochs and self.lr_schedule == "constant":
            raise ConfigError("warmup_epochs needs lr_schedule='cosine'")
        if self.lr_schedule != "constant" and self.reduce_lr_patience:
            raise ConfigError("reduce_lr_patience cannot be combined with lr_schedule="
                              f"{self.lr_schedule!r}: the schedule already sets the learning rate")
        if self.precise_bn_images == 1 or self.precise_bn_images < 0:
            raise ConfigError(f"precise_bn_images={self.precise_bn_images}: give 0 (off) or >= 2 images")


def default_monitor(task: str) -> tuple[str, str]:
    """``(metric, mode)`` watched for the best epoch: macro F1 (max) or mean CCC (max)."""
    return ("val_macro_f1", "max") if task == "classification" else ("val_ccc_mean", "max")


def library_versions() -> dict[str, str]:
    """Versions of Python and of every library that shapes a result."""
    import albumentations
    import keras
    import matplotlib
    import sklearn
    import tensorflow as tf

    from kerascv_emotion import __version__

    return {
        "kerascv_emotion": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "albumentations": albumentations.__version__,
        "scikit-learn": sklearn.__version__,
        "matplotlib": matplotlib.__version__,
    }


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; with ``deterministic``, also TensorFlow op
    determinism (bit-identical reruns, at a throughput cost measured in benchmarks/README.md)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def _check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {list(choices)}")


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
    ``settings.warmup_epochs`` from 0. ``weight_decay`` is decoupled (Keras's own)."""
    import keras

    rate: Any = learning_rate
    if settings.lr_schedule == "cosine":
        warmup = settings.warmup_epochs * steps_per_epoch
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else learning_rate,
            decay_steps=max(1, (epochs - settings.warmup_epochs) * steps_per_epoch),
            warmup_target=learning_rate if warmup else None, warmup_steps=warmup)
    decay = settings.weight_decay or None
    if settings.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=SGD_MOMENTUM, nesterov=True, weight_decay=decay)
    if settings.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=settings.weight_decay)
    return keras.optimizers.Adam(rate, weight_decay=decay)


def _compile(model: Any, settings: TrainSettings, optimizer: Any) -> None:
    import keras

    if settings.task == "classification":
        binary = model.output_shape[-1] == 1
        loss_class = keras.losses.BinaryCrossentropy if binary else keras.losses.CategoricalCrossentropy
        loss = loss_class(label_smoothing=settings.label_smoothing)
        metrics = ["accuracy"]
    else:
        loss, metrics = keras.losses.MeanSquaredError(), ["mae"]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)


@dataclass
class _Data:
    train: Any
    val: Any
    class_names: list[str]
    output_names: list[str]
    skipped: list[dict[str, str]]
    counts: dict[str, int]


def _load_data(settings: TrainSettings, num_outputs_hint: int | None = None) -> _Data:
    """Cache and stream the train and val splits of ``settings.index``."""
    from kerascv_emotion.data.cache import load_split
    from kerascv_emotion.data.index import read_index
    from kerascv_emotion.data.loader import ImageBatches, class_weights

    index = read_index(settings.index)
    for split in ("train", "val"):
        if not any(r.split == split for r in index.records):
            raise DataError(f"index {settings.index} has no '{split}' images; re-index with a val fraction > 0")
    if settings.task == "regression" and not index.has_valence_arousal:
        raise DataError(f"index {settings.index} lacks valence/arousal for some rows; a regression run needs them")
    cache_dir = Path(settings.cache_dir) if settings.cache_dir else Path(settings.index).parent / ".cache"
    train_split = load_split(index, "train", settings.image_size, settings.channels, cache_dir=cache_dir,
                             on_bad_image=settings.on_bad_image, max_pixels=settings.max_pixels)
    val_split = load_split(index, "val", settings.image_size, settings.channels, cache_dir=cache_dir,
                           on_bad_image=settings.on_bad_image, max_pixels=settings.max_pixels)
    if len(train_split.label_ids) == 0 or len(val_split.label_ids) == 0:
        raise DataError(f"index {settings.index}: no usable train or val images after skipping bad files")
    weights = None
    if settings.task == "classification" and settings.class_weight == "balanced":
        weights = class_weights(train_split.label_ids, index.num_classes)
    train = ImageBatches(train_split, batch_size=settings.batch_size, task=settings.task,
                         augment=settings.augment, shuffle=True, seed=settings.seed,
                         class_weight=weights, workers=settings.workers)
    val = ImageBatches(val_split, batch_size=max(settings.batch_size, 64), task=settings.task,
                       augment=None, shuffle=False, seed=settings.seed, workers=settings.workers)
    outputs = list(index.class_names) if settings.task == "classification" else list(REGRESSION_NAMES)
    return _Data(
        train=train, val=val, class_names=list(index.class_names), output_names=outputs,
        skipped=list(train_split.skipped) + list(val_split.skipped),
        counts={"train": int(len(train_split.label_ids)), "val": int(len(val_split.label_ids))},
    )


def _monitor(settings: TrainSettings) -> tuple[str, str]:
    if not settings.monitor:
        return default_monitor(settings.task)
    lower = settings.monitor.lower()
    return settings.monitor, "min" if ("loss" in lower or "rmse" in lower or "mae" in lower) else "max"


def _epoch_logger(phase: str, monitor: str, verbose: int) -> Any:
    """One short line per epoch (Keras's own progress bar would print every per-class value)."""
    import time

    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if not verbose:
                return
            logs = logs or {}
            shown = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy", monitor) if k in logs]
            values = " - ".join(f"{k}: {float(logs[k]):.4f}" for k in dict.fromkeys(shown))
            total = self.params.get("epochs", "?")
            print(f"Epoch {epoch + 1}/{total} [{phase}] {time.perf_counter() - self._start:.1f}s - {values}",
                  flush=True)

    return EpochLog()


def _callbacks(settings: TrainSettings, data: _Data, work: Path, phase: str,
               best_so_far: float | None, verbose: int) -> tuple[list[Any], Any]:
    """Keras's own callbacks behind PerClassMetrics; returns them and the ModelCheckpoint.

    PreciseBatchNorm (unless ``precise_bn_images`` is 0) comes first, so validation and the
    checkpoint see inference-mode statistics; PerClassMetrics next, so that every later
    callback sees its ``val_*`` values.
    ``best_so_far`` (the previous phase's best) is the checkpoint's starting threshold, so
    a later phase only replaces the model when it beats every earlier epoch.
    """
    import keras

    from kerascv_emotion.callbacks import PerClassMetrics, PreciseBatchNorm

    monitor, mode = _monitor(settings)
    checkpoint = keras.callbacks.ModelCheckpoint(
        work / f"best-{phase}.keras", monitor=monitor, mode=mode, save_best_only=True,
        initial_value_threshold=best_so_far,
    )
    callbacks: list[Any] = [PreciseBatchNorm(data.train, settings.precise_bn_images)] if settings.precise_bn_images else []
    callbacks += [
        PerClassMetrics(data.val, class_names=data.output_names, task=settings.task, log_dir=work / phase),
        keras.callbacks.TerminateOnNaN(),
        checkpoint,
        keras.callbacks.CSVLogger(str(work / f"history-{phase}.csv"), append=True),
        keras.callbacks.BackupAndRestore(str(work / f"backup-{phase}"), double_checkpoint=True),
        _epoch_logger(phase, monitor, verbose),
    ]
    if settings.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=settings.patience))
    if settings.reduce_lr_patience:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode,
                                                           patience=settings.reduce_lr_patience, factor=0.5))
    if settings.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(work.parent / "tensorboard" / phase)))
    return callbacks, checkpoint


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut by a kill mid-write
                    continue
    return out


def _finalise_logs(run_dir: Path, work: Path, phases: Sequence[str]) -> None:
    """Merge each phase's CSV and JSONL logs (deduplicated by epoch, last wins) into the run."""
    rows: dict[int, dict[str, str]] = {}
    records: dict[int, dict[str, Any]] = {}
    for phase in phases:
        for row in _read_csv_rows(work / f"history-{phase}.csv"):
            rows[int(row["epoch"])] = {"epoch": row["epoch"], "phase": phase, **{k: v for k, v in row.items() if k != "epoch"}}
        for rec in _read_jsonl(work / phase / "metrics_log.jsonl"):
            rec["phase"] = phase
            records[int(rec["epoch"])] = rec
    keys: list[str] = []
    for row in rows.values():
        keys += [k for k in row if k not in keys]
    with atomic_open(run_dir / "history.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys, restval="NA")
        writer.writeheader()
        for epoch in sorted(rows):
            writer.writerow(rows[epoch])
    with atomic_open(run_dir / "metrics_log.jsonl", "w", encoding="utf-8") as handle:
        for epoch in sorted(records):
            handle.write(json.dumps(records[epoch], allow_nan=False, default=str) + "\n")


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


def _repair_backup(backup: Path) -> None:
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


def _keras_file_readable(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def _resume_threshold(work: Path, phase: str, settings: TrainSettings, best_so_far: float | None) -> float | None:
    """On a resumed phase, the best monitored value its surviving checkpoint holds, so the
    restarted ModelCheckpoint does not replace it with a worse epoch."""
    checkpoint = work / f"best-{phase}.keras"
    if not checkpoint.exists():
        return best_so_far
    if not _keras_file_readable(checkpoint):
        checkpoint.unlink()
        return best_so_far
    monitor, mode = _monitor(settings)
    values = []
    for row in _read_csv_rows(work / f"history-{phase}.csv"):  # rows are logged after the checkpoint
        try:
            values.append(float(row.get(monitor, "nan")))
        except ValueError:
            continue
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return best_so_far
    best = max(values) if mode == "max" else min(values)
    if best_so_far is None:
        return best
    return max(best, best_so_far) if mode == "max" else min(best, best_so_far)


@dataclass
class _PhaseResult:
    checkpoint: Path | None  # best model of this phase, None if it never beat the previous best
    best: float | None       # best monitored value so far (this phase and earlier ones)


def _fit_phase(model: Any, settings: TrainSettings, data: _Data, work: Path, phase: str,
               initial_epoch: int, epochs: int, best_so_far: float | None, verbose: int) -> _PhaseResult:
    """Fit one phase, or skip it when a previous (killed) invocation already finished it."""
    done = work / f"{phase}.done.json"
    if done.is_file():
        state = read_json(done)
        return _PhaseResult(Path(state["checkpoint"]) if state["checkpoint"] else None, state["best"])
    _repair_backup(work / f"backup-{phase}")
    best_so_far = _resume_threshold(work, phase, settings, best_so_far)
    callbacks, checkpoint = _callbacks(settings, data, work, phase, best_so_far, verbose)
    # fed through tf.data (a PyDataset costs ~2x the epoch time on CPU); the batches shuffle
    # themselves, seeded per epoch, so Keras must not reorder them again
    model.fit(data.train.as_tf_dataset(), steps_per_epoch=len(data.train), epochs=initial_epoch + epochs,
              initial_epoch=initial_epoch, callbacks=[data.train.epoch_callback(), *callbacks], verbose=0,
              shuffle=False)
    path = Path(checkpoint.filepath)
    raw = checkpoint.best
    best = float(raw) if raw is not None and np.isfinite(raw) else best_so_far
    result = _PhaseResult(path if path.is_file() else None, best)
    write_json(done, {"checkpoint": str(result.checkpoint) if result.checkpoint else None, "best": result.best})
    return result


def _settings_dict(settings: TrainSettings, **extra: Any) -> dict[str, Any]:
    out = asdict(settings)
    out.update(extra)
    return out


@contextlib.contextmanager
def _run_dir(out_dir: Path) -> Iterator[Path]:
    """Make ``out_dir/work`` and yield it; if the block fails, the folders this call made
    are removed again while still empty (a settings or data error leaves no empty run)."""
    made = [p for p in (out_dir / "work", *(out_dir / "work").parents) if not p.exists()]
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    except BaseException:
        for folder in made:  # innermost first
            with contextlib.suppress(OSError):  # not empty (a resumable backup), or gone
                folder.rmdir()
        raise


def train(settings: TrainSettings, out_dir: str | os.PathLike, verbose: int = 2) -> Path:
    """Train ``settings.arch`` on ``settings.index`` into the run directory ``out_dir``.

    ``settings.optimizer`` at ``settings.learning_rate`` (:func:`make_optimizer`); categorical
    cross-entropy (with ``label_smoothing``) weighted by "balanced"
    class weights (or MSE on valence/arousal for ``task="regression"``); validation by
    PerClassMetrics; the best epoch by ``settings.monitor`` (default ``val_macro_f1`` /
    ``val_ccc_mean``) is kept as ``model.keras``. Returns the run directory.
    """
    from kerascv_emotion.models import build_model, check_model_options

    settings.check()
    check_model_options(settings.arch, settings.arch_kwargs)
    run_dir = Path(out_dir)
    with _run_dir(run_dir) as work:
        seed_everything(settings.seed, settings.deterministic)
        _configure_precision(settings.mixed_precision)  # the "predictions" layer stays float32
        data = _load_data(settings)
        num_outputs = len(data.class_names) if settings.task == "classification" else 2
        model = build_model(settings.arch, input_shape=(settings.image_size, settings.image_size, settings.channels),
                            num_classes=num_outputs, head=settings.task, **settings.arch_kwargs)
        _compile(model, settings, make_optimizer(settings, settings.learning_rate, len(data.train), settings.epochs))
        result = _fit_phase(model, settings, data, work, "train", 0, settings.epochs, None, verbose)
        if result.checkpoint is None:
            raise DataError(f"training {run_dir} never produced a finite {_monitor(settings)[0]}; see {work}")
        _finish_run(run_dir, work, result.checkpoint, ["train"], settings, data, model,
                    phases=[{"name": "train", "first_epoch": 0, "epochs": settings.epochs,
                             "learning_rate": settings.learning_rate}])
    return run_dir


def _finish_run(run_dir: Path, work: Path, checkpoint: Path, phase_names: Sequence[str],
                settings: TrainSettings, data: _Data, model: Any, phases: list[dict[str, Any]],
                **extra: Any) -> None:
    _finalise_logs(run_dir, work, phase_names)
    write_json(run_dir / "class_names.json", data.output_names)
    write_json(run_dir / "skipped_images.json", {"count": len(data.skipped), "files": data.skipped})
    if data.skipped:
        log.warning("%d image(s) skipped; listed in %s", len(data.skipped), run_dir / "skipped_images.json")
    write_json(run_dir / "config.json", _settings_dict(
        settings, class_names=data.class_names, output_names=data.output_names,
        params=int(model.count_params()), samples=data.counts, phases=phases,
        versions=library_versions(), devices=device_record(), **extra,
    ))
    with atomic_path(run_dir / "model.keras") as tmp:
        shutil.copyfile(checkpoint, tmp)
    shutil.rmtree(work, ignore_errors=True)


def load_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``RUN/config.json`` with a clear error when the run is not finished."""
    path = Path(run_dir) / "config.json"
    if not path.is_file() or not (Path(run_dir) / "model.keras").is_file():
        raise DataError(f"{run_dir} is not a finished run (no config.json/model.keras); run `kerascv-emotion train` first")
    return read_json(path)


def load_model(path: str | os.PathLike) -> Any:
    """Load a ``.keras`` file saved by this library (custom objects registered on import)."""
    import keras

    import kerascv_emotion.models  # noqa: F401  (registers custom objects)

    path = Path(path)
    if not path.is_file():
        raise DataError(f"model file {path} does not exist")
    if not _keras_file_readable(path):
        raise DataError(f"model file {path} is corrupt or not a Keras file (not a readable .keras zip archive)")
    try:
        return keras.saving.load_model(path)
    except Exception as exc:  # noqa: BLE001 - a corrupt file can fail in many ways
        raise DataError(f"cannot load model {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None


def _layer_names_after(model: Any, first: str) -> list[str]:
    names = [layer.name for layer in model.layers]
    if first not in names:
        raise ConfigError(f"model {model.name!r} has no layer {first!r}")
    return names[names.index(first):]


def set_trainable(model: Any, phase: str, unfreeze_blocks: int | None = None) -> dict[str, bool]:
    """Set ``layer.trainable`` for a tuning phase; returns ``{layer name: trainable}``.

    * ``phase="head"``: only the head (from the model's head start to ``predictions``)
      trains; the backbone is frozen.
    * ``phase="finetune"``: the head plus all backbone layers (``unfreeze_blocks=None``)
      or the last ``unfreeze_blocks`` conv blocks train. BatchNormalization layers stay
      frozen, which in Keras 3 also keeps them in inference mode (the transfer-learning
      guide's advice), so small fine-tuning batches do not wreck their statistics.
    """
    import keras

    from kerascv_emotion.models import backbone_blocks, head_start_layer

    head = set(_layer_names_after(model, head_start_layer(model)))
    if phase == "head":
        trainable = head
    elif phase == "finetune":
        if unfreeze_blocks is None:
            trainable = {layer.name for layer in model.layers}
        else:
            blocks = backbone_blocks(model)
            if unfreeze_blocks < 0 or unfreeze_blocks > len(blocks):
                raise ConfigError(f"unfreeze_blocks={unfreeze_blocks}: the model has {len(blocks)} blocks")
            chosen = blocks[len(blocks) - unfreeze_blocks:] if unfreeze_blocks else []
            trainable = head | {name for block in chosen for name in block}
    else:
        raise ConfigError(f"unknown tuning phase {phase!r}; use 'head' or 'finetune'")
    state: dict[str, bool] = {}
    for layer in model.layers:
        on = layer.name in trainable and not isinstance(layer, keras.layers.BatchNormalization)
        if phase == "head" and isinstance(layer, keras.layers.BatchNormalization) and layer.name in head:
            on = True  # a new head's own BN statistics must be learnt
        layer.trainable = on
        state[layer.name] = on
    return state


@dataclass
class TuneSettings:
    """Two-phase fine-tuning of a saved model (phase 1 head, phase 2 unfrozen at a low LR)."""

    model: str
    index: str
    task: str | None = None
    image_size: int | None = None
    channels: int | None = None
    head_epochs: int = 3
    finetune_epochs: int = 3
    head_learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-5
    unfreeze_blocks: int | None = None
    batch_size: int = 32
    augment: str | dict | None = "paper_face"
    seed: int = 0
    class_weight: str | None = "balanced"
    monitor: str | None = None
    on_bad_image: str = "skip"
    max_pixels: int | None = None
    workers: int = 1
    cache_dir: str | None = None
    precise_bn_images: int = PRECISE_BN_IMAGES
    deterministic: bool = False


def tune(settings: TuneSettings, out_dir: str | os.PathLike, verbose: int = 2) -> Path:
    """Fine-tune a saved model (``settings.model``: a ``.keras`` file or a run directory).

    Phase ``head`` trains only the head (a new one when the task or class count changes)
    at ``head_learning_rate``; phase ``finetune`` unfreezes everything or the last
    ``unfreeze_blocks`` blocks at ``finetune_learning_rate`` with BatchNormalization in
    inference mode. Both phases go into one ``history.csv`` (``phase`` column), so the
    report's curves show the boundary. Returns the run directory.
    """
    from kerascv_emotion.models import replace_predictions

    source = Path(settings.model)
    base_config: dict[str, Any] = {}
    if source.is_dir():
        base_config = load_run_config(source)
        source = source / "model.keras"
    model = load_model(source)
    _, height, width, channels = model.input_shape
    task = settings.task or base_config.get("task", "classification")
    _check_choice("task", task, TASKS)
    image_size = settings.image_size or height
    if image_size != height or (settings.channels and settings.channels != channels):
        raise ConfigError(f"the saved model takes {height}x{width}x{channels} inputs; "
                          f"image_size={image_size} channels={settings.channels} do not match")
    train_settings = TrainSettings(
        arch=base_config.get("arch", model.name), index=settings.index, task=task, image_size=height,
        channels=channels, epochs=settings.head_epochs + settings.finetune_epochs,
        batch_size=settings.batch_size, augment=settings.augment, seed=settings.seed,
        learning_rate=settings.head_learning_rate, class_weight=settings.class_weight,
        monitor=settings.monitor, on_bad_image=settings.on_bad_image, max_pixels=settings.max_pixels,
        workers=settings.workers,
        cache_dir=settings.cache_dir, precise_bn_images=settings.precise_bn_images,
        deterministic=settings.deterministic,
    )
    train_settings.check()
    run_dir = Path(out_dir)
    with _run_dir(run_dir) as work:
        seed_everything(settings.seed, settings.deterministic)
        data = _load_data(train_settings)
        num_outputs = len(data.class_names) if task == "classification" else 2
        old_task = base_config.get("task", "regression" if model.output_shape[-1] == 2 and
                                   model.get_layer("predictions").activation.__name__ == "linear" else "classification")
        new_head = task != old_task or model.output_shape[-1] != num_outputs
        if new_head:
            model = replace_predictions(model, num_outputs, task)
        phases: list[dict[str, Any]] = []
        checkpoint: Path | None = None
        best: float | None = None
        phase_names: list[str] = []
        epoch = 0
        for phase, epochs, lr in (("head", settings.head_epochs, settings.head_learning_rate),
                                  ("finetune", settings.finetune_epochs, settings.finetune_learning_rate)):
            if epochs <= 0:
                continue
            state = set_trainable(model, phase, settings.unfreeze_blocks)
            if checkpoint is not None:  # continue from the best epoch so far, not the last one
                model.load_weights(checkpoint)
            _compile(model, train_settings, make_optimizer(train_settings, lr, len(data.train), epochs))
            result = _fit_phase(model, train_settings, data, work, phase, epoch, epochs, best, verbose)
            checkpoint, best = result.checkpoint or checkpoint, result.best
            phases.append({"name": phase, "first_epoch": epoch, "epochs": epochs, "learning_rate": lr,
                           "trainable_layers": sum(state.values()), "frozen_layers": len(state) - sum(state.values())})
            phase_names.append(phase)
            epoch += epochs
        if not phase_names:
            raise ConfigError("tune needs head_epochs or finetune_epochs > 0")
        if checkpoint is None:
            raise DataError(f"tuning {run_dir} never produced a finite {_monitor(train_settings)[0]}; see {work}")
        _finish_run(run_dir, work, checkpoint, phase_names, train_settings, data, model, phases=phases,
                    tuned_from=str(settings.model), new_head=new_head,
                    unfreeze_blocks=settings.unfreeze_blocks)
    return run_dir
