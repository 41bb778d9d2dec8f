"""``PerClassMetrics``: the validation pass of ``fit``, with per-class metrics, in one go.

Use it *instead of* ``fit(validation_data=...)``: at the end of an epoch it runs one
prediction pass over the validation data, computes the validation loss exactly as Keras's
own validation does (the compiled loss with sample weights, plus regularisation losses,
averaged over batches weighted by batch size) and every metric of
:mod:`kerascv_emotion.metrics`, and writes flat scalars into the epoch's ``logs`` dict in
place, so callbacks placed *after* it in the list (EarlyStopping, ModelCheckpoint,
ReduceLROnPlateau, CSVLogger, TensorBoard, History, the progress bar) see them.

Names put into ``logs`` (NaN where undefined; class and dimension names are used as
given, spaces included):

* classification: ``val_loss``, ``val_accuracy``, ``val_balanced_accuracy``,
  ``val_macro_f1`` (the mean F1 of the classes present in the validation data,
  :func:`present_macro_f1`), ``val_weighted_f1``, ``val_auc_macro``, ``val_auc_micro``,
  ``val_kappa``, and per class ``val_precision/<class>``, ``val_recall/<class>``,
  ``val_f1/<class>``, ``val_specificity/<class>``, ``val_auc/<class>``;
* regression: ``val_loss``, ``val_rmse_mean``, ``val_corr_mean``, ``val_sagr_mean``,
  ``val_ccc_mean``, and per dimension ``val_rmse/<dim>``, ``val_corr/<dim>``,
  ``val_sagr/<dim>``, ``val_ccc/<dim>``.

Keras cannot infer the direction of these names: give ``mode="max"`` (or ``"min"`` for
``val_loss``/``val_rmse*``) to EarlyStopping, ModelCheckpoint and ReduceLROnPlateau.
With ``every > 1`` the skipped epochs carry no ``val_*`` keys (Keras's callbacks warn and
skip them; a CSVLogger fixes its columns at the first epoch, so keep ``every=1`` there).
Compiled metrics other than the loss (e.g. ``mae``) are not recomputed on validation data.
"""

from __future__ import annotations

import collections
import importlib.util
import io
import json
import logging
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerascv_emotion.errors import ConfigError
from kerascv_emotion.io import atomic_open, to_jsonable
from kerascv_emotion.metrics import (
    classification_metrics,
    regression_metrics,
)
from kerascv_emotion.tasks import REGRESSION_MEASURES, REGRESSION_NAMES, TASKS

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32  # Keras's own default for arrays
_CLASS_SCALARS = (("val_accuracy", "accuracy"), ("val_balanced_accuracy", "balanced_accuracy"),
                  ("val_kappa", "cohen_kappa"), ("val_auc_macro", "roc_auc_macro"),
                  ("val_auc_micro", "roc_auc_micro"))
_PER_CLASS = (("precision", "precision"), ("recall", "recall"), ("f1", "f1"),
              ("specificity", "specificity"), ("auc", "roc_auc"))


def classification_logs(metrics: dict[str, Any]) -> dict[str, float]:
    """Flat ``val_*`` scalars (module docstring) from a :func:`classification_metrics` dict."""
    out = {key: float(metrics[source]) for key, source in _CLASS_SCALARS}
    out["val_macro_f1"] = present_macro_f1(metrics)
    out["val_weighted_f1"] = float(metrics["weighted_avg"]["f1"])
    for name in metrics["class_names"]:
        for prefix, source in _PER_CLASS:
            out[f"val_{prefix}/{name}"] = float(metrics["per_class"][name][source])
    return out


def present_macro_f1(metrics: dict[str, Any]) -> float:
    """The mean F1 of the classes present in the data (support > 0; NaN when none is), from a
    :func:`classification_metrics` dict. scikit-learn's macro F1 (``macro_avg.f1``) also
    averages classes without samples, each as 0: a class without validation images would
    lower every epoch's value alike and hide how the classes that can be judged fare."""
    per_class = metrics["per_class"]
    present = [per_class[name]["f1"] for name in metrics["class_names"] if per_class[name]["support"] > 0]
    return float(np.mean(present)) if present else math.nan


def regression_logs(metrics: dict[str, Any]) -> dict[str, float]:
    """Flat ``val_*`` scalars (module docstring) from a :func:`regression_metrics` dict."""
    out = {f"val_{key}_mean": float(metrics["mean"][key]) for key in REGRESSION_MEASURES}
    for name in metrics["names"]:
        for key in REGRESSION_MEASURES:
            out[f"val_{key}/{name}"] = float(metrics["per_dim"][name][key])
    return out


def _undefined_logs(task: str, names: Sequence[str]) -> dict[str, float]:
    """Every ``val_*`` scalar of ``task`` (except ``val_loss``) set to NaN."""
    if task == "classification":
        undefined = {"macro_avg": {"f1": math.nan}, "weighted_avg": {"f1": math.nan},
                     "class_names": list(names),
                     "per_class": {n: {"support": 0, **{source: math.nan for _, source in _PER_CLASS}}
                                   for n in names}}
        undefined.update({source: math.nan for _, source in _CLASS_SCALARS})
        return classification_logs(undefined)
    return regression_logs({"names": list(names), "mean": dict.fromkeys(REGRESSION_MEASURES, math.nan),
                            "per_dim": {n: dict.fromkeys(REGRESSION_MEASURES, math.nan) for n in names}})


def log_names(task: str, names: Sequence[str]) -> list[str]:
    """Every name PerClassMetrics puts into ``logs`` (module docstring) for ``task`` and its
    class or dimension ``names``."""
    return ["val_loss", *_undefined_logs(task, names)]


def _batch_size_of(x: Any) -> int:
    first = next(leaf for leaf in keras.tree.flatten(x) if leaf is not None)
    return int(first.shape[0])


def _unpack(batch: Any) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight)`` of one batch; raises if it carries no labels."""
    if isinstance(batch, tuple | list) and len(batch) in (2, 3):
        x, y, sw = (*batch, None) if len(batch) == 2 else batch
        if y is not None:
            return x, y, sw
    raise ConfigError(
        "PerClassMetrics validation batches must be (x, y) or (x, y, sample_weight); "
        "got a batch without labels"
    )


def _ordered_prefetch(dataset: keras.utils.PyDataset, n: int) -> Iterator[Any]:
    """``dataset[0..n-1]`` in order, loaded ``dataset.workers`` at a time in threads,
    at most ``dataset.max_queue_size`` batches ahead."""
    workers = max(1, int(getattr(dataset, "workers", 1) or 1))
    if workers == 1:
        for i in range(n):
            yield dataset[i]
        return
    ahead = max(workers, int(getattr(dataset, "max_queue_size", 10) or 10))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: collections.deque = collections.deque()
        for i in range(n):
            pending.append(pool.submit(dataset.__getitem__, i))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class PerClassMetrics(keras.callbacks.Callback):
    """Validation loss and per-class metrics from one prediction pass per epoch.

    Args:
        validation_data: ``(x, y)`` or ``(x, y, sample_weight)`` arrays, a batched
            ``tf.data.Dataset`` or a ``keras.utils.PyDataset`` yielding such tuples. Labels
            are integer ids ``(N,)``/``(N, 1)`` or one-hot ``(N, K)`` (classification) or
            ``(N, D)`` targets (regression), in whatever form the compiled loss expects.
        class_names: K class names (classification; default ``"0".."K-1"``) or D dimension
            names (regression; default valence/arousal for D = 2, else ``"dim<i>"``).
        task: ``"classification"`` (softmax ``(N, K)`` or sigmoid ``(N, 1)`` outputs) or
            ``"regression"``.
        every: compute on epochs with ``(epoch + 1) % every == 0`` and on the last epoch.
        log_dir: if set, each record is appended to ``log_dir/metrics_log.jsonl``.
        batch_size: batch size for array data (default 32); not used for datasets.
        tensorboard_dir: if set, the scalars (and the confusion image) go to TensorBoard.
        confusion_image: also write the confusion matrix as a TensorBoard image each time.
        from_logits: the model outputs logits (softmax/sigmoid applied for the metrics).

    Attributes:
        records: one dict per computed epoch: ``{"epoch", "val_loss", ...}`` plus the
            metrics dict (confusion matrix included); ``last_record`` is the latest.
    """

    def __init__(self, validation_data: Any, class_names: Sequence[str] | None = None,
                 task: str = "classification", every: int = 1,
                 log_dir: str | Path | None = None, batch_size: int | None = None,
                 tensorboard_dir: str | Path | None = None, confusion_image: bool = False,
                 from_logits: bool = False) -> None:
        super().__init__()
        if task not in TASKS:
            raise ConfigError(f"PerClassMetrics task {task!r} is unknown; use one of {TASKS}")
        if int(every) < 1:
            raise ConfigError(f"PerClassMetrics every={every} must be a positive number of epochs")
        if confusion_image and (tensorboard_dir is None or task != "classification"):
            raise ConfigError("PerClassMetrics confusion_image=True needs tensorboard_dir and "
                              "task='classification'")
        if tensorboard_dir is not None and importlib.util.find_spec("tensorboard") is None:
            raise ConfigError("PerClassMetrics tensorboard_dir needs the tensorboard package; "
                              "pip install tensorboard (or leave tensorboard_dir unset)")
        if batch_size is not None and int(batch_size) < 1:
            raise ConfigError(f"PerClassMetrics batch_size={batch_size} must be positive")
        self.validation_data = validation_data
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.task = task
        self.every = int(every)
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.batch_size = batch_size
        self.tensorboard_dir = None if tensorboard_dir is None else Path(tensorboard_dir)
        self.confusion_image = confusion_image
        self.from_logits = from_logits
        self.records: list[dict[str, Any]] = []
        self.last_record: dict[str, Any] | None = None
        self._batches = self._batch_source(validation_data)
        self._step: Any = None
        self._writer: Any = None

    # ------------------------------------------------------------------ data

    def _batch_source(self, data: Any) -> Any:
        """A zero-argument callable returning a fresh iterator of validation batches."""
        import tensorflow as tf

        if isinstance(data, tf.data.Dataset):
            if self.batch_size is not None:
                raise ConfigError("PerClassMetrics batch_size is only for array data; batch the tf.data.Dataset instead")
            return lambda: iter(data)
        if isinstance(data, keras.utils.PyDataset):
            if self.batch_size is not None:
                raise ConfigError("PerClassMetrics batch_size is only for array data; the PyDataset sets its own")
            n = data.num_batches
            if n is None:
                raise ConfigError("PerClassMetrics needs a finite PyDataset (num_batches is None)")
            return lambda: _ordered_prefetch(data, int(n))
        if isinstance(data, tuple | list) and len(data) in (2, 3):
            x, y, sw = _unpack(tuple(data))
            total = _batch_size_of(x)
            size = int(self.batch_size or DEFAULT_BATCH_SIZE)

            def batches() -> Iterator[tuple[Any, Any, Any]]:
                for start in range(0, total, size):
                    cut = slice(start, start + size)
                    yield (keras.tree.map_structure(lambda a, c=cut: a[c], x), y[cut],
                           None if sw is None else sw[cut])

            return batches
        raise ConfigError(
            "PerClassMetrics validation_data must be (x, y[, sample_weight]) arrays, a "
            f"tf.data.Dataset or a keras.utils.PyDataset, not {type(data).__name__}"
        )

    def _make_step(self) -> Any:
        """``(x, y, sw) -> (y_pred, loss)`` as in ``Model.test_step``, compiled like it."""
        model = self.model

        def step(x: Any, y: Any, sw: Any) -> tuple[Any, Any]:
            y_pred = model(x, training=False)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sw, training=False)
            return y_pred, loss

        if keras.backend.backend() == "tensorflow" and not model.run_eagerly:
            import tensorflow as tf

            return tf.function(step, reduce_retracing=True, jit_compile=bool(model.jit_compile))
        return step

    def predict_with_loss(self) -> tuple[np.ndarray, np.ndarray, float]:
        """One pass over the validation data -> ``y_true``, ``y_pred`` (``(N, ...)`` arrays)
        and the validation loss (batch losses averaged with batch-size weights, as Keras)."""
        if self._step is None:
            self._step = self._make_step()
        ys, preds = [], []
        loss_sum, count = 0.0, 0
        for batch in self._batches():
            x, y, sw = _unpack(batch)
            y_pred, loss = self._step(x, y, sw)
            if not keras.ops.is_tensor(y_pred) and not isinstance(y_pred, np.ndarray):
                raise ConfigError("PerClassMetrics needs a single-output model; this one returns "
                                  f"{type(y_pred).__name__}")
            n = _batch_size_of(x)
            loss_sum += float(keras.ops.convert_to_numpy(loss)) * n
            count += n
            ys.append(np.asarray(keras.ops.convert_to_numpy(y)))
            preds.append(np.asarray(keras.ops.convert_to_numpy(y_pred)))
        if count == 0:
            raise ConfigError("PerClassMetrics validation data is empty; give it at least one batch")
        return np.concatenate(ys), np.concatenate(preds), loss_sum / count

    # ------------------------------------------------------------- metrics

    def _names(self, y_pred: np.ndarray) -> list[str]:
        if self.class_names is not None:
            return self.class_names
        width = y_pred.shape[1] if y_pred.ndim == 2 else 1
        if self.task == "classification":
            return [str(i) for i in range(max(width, 2))]
        if width == len(REGRESSION_NAMES):
            return list(REGRESSION_NAMES)
        return [f"dim{i}" for i in range(width)]

    def compute(self) -> tuple[dict[str, Any], dict[str, float]]:
        """Run the pass; return the full record (without ``epoch``) and the flat logs."""
        y_true, y_pred, loss = self.predict_with_loss()
        names = self._names(y_pred)
        if not np.all(np.isfinite(y_pred)):
            note = "predictions hold NaN or infinite values: the model diverged; metrics undefined"
            log.warning("PerClassMetrics: %s", note)
            return {"val_loss": loss, "notes": [note]}, {"val_loss": loss, **_undefined_logs(self.task, names)}
        if self.task == "classification":
            metrics = classification_metrics(y_true, y_pred, names, from_logits=self.from_logits)
            flat = classification_logs(metrics)
        else:
            metrics = regression_metrics(y_true, y_pred, names)
            flat = regression_logs(metrics)
        return {"val_loss": loss, **metrics}, {"val_loss": loss, **flat}

    def _due(self, epoch: int) -> bool:
        last = (self.params or {}).get("epochs")
        return (epoch + 1) % self.every == 0 or (last is not None and epoch + 1 == int(last))

    # ----------------------------------------------------------- callbacks

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not getattr(self.model, "compiled", False):
            raise ConfigError("PerClassMetrics needs a compiled model (model.compile(loss=...))")
        self._step = None  # the model may have been recompiled since the last fit

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._due(epoch):
            return
        record, flat = self.compute()
        record = {"epoch": int(epoch), **record}
        if logs is not None:
            logs.update(flat)
        self.records.append(record)
        self.last_record = record
        if self.log_dir is not None:
            self._append_jsonl(record)
        if self.tensorboard_dir is not None:
            self._write_tensorboard(epoch, flat, record)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -------------------------------------------------------------- output

    def _append_jsonl(self, record: dict[str, Any]) -> None:
        """Append one JSON line (NaN -> null) to ``metrics_log.jsonl``; the file is replaced
        atomically, so a kill never leaves a partial line."""
        path = self.log_dir / "metrics_log.jsonl"
        previous = path.read_text(encoding="utf-8") if path.is_file() else ""
        if previous and not previous.endswith("\n"):
            previous += "\n"
        with atomic_open(path, "w", encoding="utf-8") as handle:
            handle.write(previous + json.dumps(to_jsonable(record), allow_nan=False) + "\n")

    def _write_tensorboard(self, epoch: int, flat: dict[str, float], record: dict[str, Any]) -> None:
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.tensorboard_dir))
        with self._writer.as_default(step=int(epoch)):
            for key, value in flat.items():
                tf.summary.scalar(key, value)
            if self.confusion_image and "confusion_matrix" in record:
                png = confusion_matrix_png(record["confusion_matrix"], record["class_names"],
                                           title=f"epoch {epoch + 1}")
                tf.summary.image("val_confusion_matrix", tf.image.decode_png(png, channels=3)[None])
        self._writer.flush()


def confusion_matrix_png(matrix: Sequence[Sequence[int]], class_names: Sequence[str],
                         title: str = "") -> bytes:
    """PNG bytes of a confusion matrix (true rows, predicted columns), drawn with
    scikit-learn's ``ConfusionMatrixDisplay`` on a matplotlib Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    k = len(class_names)
    size = 2.0 + 0.6 * k
    fig = Figure(figsize=(size, size), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=list(class_names)).plot(
        ax=ax, colorbar=False, xticks_rotation=45 if k > 3 else "horizontal")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
