"""PerClassMetrics: Keras-equal validation loss, logs that Keras's callbacks act on, inputs."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import csv  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerascv_emotion.callbacks import PerClassMetrics  # noqa: E402
from kerascv_emotion.errors import ConfigError  # noqa: E402
from kerascv_emotion.metrics import classification_metrics, regression_metrics  # noqa: E402

NAMES = ["anger", "very happy", "sad"]  # a space stays in the log key
SHAPE = (8, 8, 1)


def _data(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 8, 8, 1)`` whose mean brightness carries the label, and ids ``(n,)``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, *SHAPE)).astype("float32") + y[:, None, None, None].astype("float32")
    return x, y


def _model(k: int, *, bn: bool = True, lr: float = 0.05, loss: str = "sparse_categorical_crossentropy",
           activation: str = "softmax") -> keras.Model:
    """A tiny Sequential CNN with L2 regularisation, dropout and (optionally) BatchNormalization."""
    keras.utils.set_random_seed(0)
    layers = [keras.Input(SHAPE), keras.layers.Conv2D(4, 3, kernel_regularizer=keras.regularizers.L2(0.01))]
    if bn:
        layers.append(keras.layers.BatchNormalization())
    layers += [keras.layers.Flatten(), keras.layers.Dropout(0.5), keras.layers.Dense(k, activation=activation)]
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.SGD(lr), loss=loss, metrics=["accuracy"])
    return model


class _KerasValLogs(keras.callbacks.Callback):
    """Placed *before* PerClassMetrics: copies the val_* values Keras's own validation wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seen.append({k: v for k, v in (logs or {}).items() if k.startswith("val_")})


def test_val_loss_equals_keras_validation_with_weights_dropout_bn_and_l2() -> None:
    x, y = _data(48, 3, 0)
    xv, yv = _data(30, 3, 1)
    sw = np.random.default_rng(2).uniform(0.5, 2.0, 30).astype("float32")
    model = _model(3)
    keras_side = _KerasValLogs()
    ours = PerClassMetrics((xv, yv, sw), class_names=NAMES, batch_size=7)  # other batching than Keras
    history = model.fit(x, y, epochs=2, batch_size=16, validation_data=(xv, yv, sw),
                        callbacks=[keras_side, ours], verbose=0)
    assert model.losses, "the model must carry a regularisation loss for this test to mean anything"
    assert [r["epoch"] for r in ours.records] == [0, 1]
    for seen, record in zip(keras_side.seen, ours.records, strict=True):
        assert record["val_loss"] == pytest.approx(seen["val_loss"], rel=1e-5)
        assert record["accuracy"] == pytest.approx(seen["val_accuracy"], abs=1e-6)
    final = model.evaluate(xv, yv, sample_weight=sw, verbose=0, return_dict=True)
    assert history.history["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-5)
    assert ours.last_record is ours.records[-1]


def test_replaces_validation_data_with_one_pass_over_a_pydataset() -> None:
    x, y = _data(48, 3, 3)
    xv, yv = _data(30, 3, 4)

    class Batches(keras.utils.PyDataset):
        """Integer labels in batches of 8; records every batch index it is asked for."""

        def __init__(self) -> None:
            super().__init__(workers=2)
            self.asked: list[int] = []
            self.lock = threading.Lock()

        def __len__(self) -> int:
            return math.ceil(len(xv) / 8)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            with self.lock:
                self.asked.append(i)
            return xv[i * 8:(i + 1) * 8], yv[i * 8:(i + 1) * 8]

    val = Batches()
    model = _model(3)
    cb = PerClassMetrics(val, class_names=NAMES)
    history = model.fit(x, y, epochs=2, batch_size=16, callbacks=[cb], verbose=0)
    assert sorted(val.asked) == sorted(list(range(len(val))) * 2)  # one pass per epoch
    expected = classification_metrics(yv, model.predict(xv, verbose=0), NAMES)
    record = cb.last_record
    assert record["confusion_matrix"] == expected["confusion_matrix"]
    assert record["macro_avg"]["f1"] == pytest.approx(expected["macro_avg"]["f1"])
    assert record["per_class"]["very happy"]["roc_auc"] == pytest.approx(
        expected["per_class"]["very happy"]["roc_auc"], abs=1e-6)
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(xv, yv, verbose=0)[0], rel=1e-5)
    assert history.history["val_f1/very happy"][-1] == pytest.approx(expected["per_class"]["very happy"]["f1"])
    keys = set(history.history)
    for name in NAMES:
        assert {f"val_{m}/{name}" for m in ("precision", "recall", "f1", "specificity", "auc")} <= keys
    assert {"val_loss", "val_accuracy", "val_balanced_accuracy", "val_macro_f1", "val_weighted_f1",
            "val_auc_macro", "val_auc_micro", "val_kappa"} <= keys


def test_tf_data_with_one_hot_labels() -> None:
    x, y = _data(48, 3, 5)
    xv, yv = _data(30, 3, 6)
    onehot = np.eye(3, dtype="float32")
    val = tf.data.Dataset.from_tensor_slices((xv, onehot[yv])).batch(8)
    model = _model(3, loss="categorical_crossentropy")
    cb = PerClassMetrics(val, class_names=NAMES)
    model.fit(x, onehot[y], epochs=1, batch_size=16, callbacks=[cb], verbose=0)
    expected = classification_metrics(yv, model.predict(xv, verbose=0), NAMES)
    assert cb.last_record["confusion_matrix"] == expected["confusion_matrix"]
    assert cb.last_record["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-5)
    assert cb.last_record["val_loss"] == pytest.approx(model.evaluate(val, verbose=0)[0], rel=1e-5)


def test_binary_sigmoid_functional_model_default_names() -> None:
    x, y = _data(40, 2, 7)
    xv, yv = _data(24, 2, 8)
    keras.utils.set_random_seed(0)
    inputs = keras.Input(SHAPE)
    hidden = keras.layers.Dropout(0.3)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
    model.compile("adam", loss="binary_crossentropy", metrics=["accuracy"])
    keras_side = _KerasValLogs()
    cb = PerClassMetrics((xv, yv))
    model.fit(x, y, epochs=1, validation_data=(xv, yv), callbacks=[keras_side, cb], verbose=0)
    record = cb.last_record
    assert record["class_names"] == ["0", "1"] and record["binary"]["positive_class"] == "1"
    assert record["val_loss"] == pytest.approx(keras_side.seen[0]["val_loss"], rel=1e-5)
    assert record["accuracy"] == pytest.approx(keras_side.seen[0]["val_accuracy"], abs=1e-6)


def test_early_stopping_acts_on_val_macro_f1() -> None:
    # learning rate 0 and no BatchNormalization: the weights never change, so val_macro_f1
    # never improves after the first epoch and patience 2 stops training after epoch index 2.
    x, y = _data(32, 3, 9)
    xv, yv = _data(24, 3, 10)
    model = _model(3, bn=False, lr=0.0)
    cb = PerClassMetrics((xv, yv), class_names=NAMES)
    stop = keras.callbacks.EarlyStopping(monitor="val_macro_f1", mode="max", patience=2)
    history = model.fit(x, y, epochs=10, batch_size=16, callbacks=[cb, stop], verbose=0)
    assert history.epoch == [0, 1, 2] and stop.stopped_epoch == 2
    assert float(stop.best) == cb.records[0]["macro_avg"]["f1"]
    assert len({r["macro_avg"]["f1"] for r in cb.records}) == 1


def test_checkpoint_and_csv_logger_follow_the_callbacks_values(tmp_path: Path) -> None:
    x, y = _data(48, 3, 11)
    xv, yv = _data(30, 3, 12)
    model = _model(3, lr=0.01)  # macro F1 rises, stalls and rises again over 5 epochs
    cb = PerClassMetrics((xv, yv), class_names=NAMES)
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "w-{epoch:02d}.weights.h5"), monitor="val_macro_f1", mode="max",
        save_best_only=True, save_weights_only=True)
    csv_log = keras.callbacks.CSVLogger(str(tmp_path / "history.csv"))
    model.fit(x, y, epochs=5, batch_size=16, callbacks=[cb, checkpoint, csv_log], verbose=0)
    best, improved = -math.inf, []
    for record in cb.records:
        if record["macro_avg"]["f1"] > best:
            best = record["macro_avg"]["f1"]
            improved.append(record["epoch"] + 1)  # Keras names files by 1-based epoch
    written = sorted(int(p.name[2:4]) for p in tmp_path.glob("w-*.weights.h5"))
    assert written == improved
    with open(tmp_path / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["val_macro_f1"]) for r in rows] == pytest.approx([r["macro_avg"]["f1"] for r in cb.records])
    assert [float(r["val_recall/very happy"]) for r in rows] == pytest.approx(
        [r["per_class"]["very happy"]["recall"] for r in cb.records])


HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="tensorboard is not installed")
def test_every_n_jsonl_log_and_tensorboard(tmp_path: Path) -> None:
    x, y = _data(32, 3, 13)
    xv, yv = _data(24, 2, 14)  # the third class is absent from validation: its AUC is NaN
    model = _model(3)
    cb = PerClassMetrics((xv, yv), class_names=NAMES, every=2, log_dir=tmp_path / "log",
                         tensorboard_dir=tmp_path / "tb", confusion_image=True)
    history = model.fit(x, y, epochs=3, batch_size=16, callbacks=[cb], verbose=0)
    assert [r["epoch"] for r in cb.records] == [1, 2]  # (epoch + 1) % 2 == 0, and the last epoch
    assert len(history.history["val_macro_f1"]) == 2 and len(history.history["loss"]) == 3
    assert math.isnan(history.history["val_auc/sad"][-1])
    lines = (tmp_path / "log" / "metrics_log.jsonl").read_text().splitlines()
    rows = [json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in JSONL")) for line in lines]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["per_class"]["sad"]["roc_auc"] is None
    assert rows[-1]["confusion_matrix"] == cb.last_record["confusion_matrix"]
    assert rows[-1]["val_loss"] == pytest.approx(cb.last_record["val_loss"])
    model.fit(x, y, epochs=1, batch_size=16, callbacks=[cb], verbose=0)  # a later fit appends
    assert len((tmp_path / "log" / "metrics_log.jsonl").read_text().splitlines()) == 3

    tags: dict[str, int] = {}
    for event_file in (tmp_path / "tb").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                tags[value.tag] = tags.get(value.tag, 0) + 1
    assert tags["val_macro_f1"] == 3 and tags["val_auc/very happy"] == 3
    assert tags["val_confusion_matrix"] == 3


def test_regression_task() -> None:
    rng = np.random.default_rng(15)
    x = rng.normal(size=(40, *SHAPE)).astype("float32")
    xv = rng.normal(size=(24, *SHAPE)).astype("float32")
    targets = lambda a: np.tanh(a.mean(axis=(1, 2, 3))[:, None] * [1.0, -2.0]).astype("float32")  # noqa: E731
    model = _model(2, activation="tanh", loss="mse")
    cb = PerClassMetrics((xv, targets(xv)), task="regression")
    history = model.fit(x, targets(x), epochs=2, batch_size=16, callbacks=[cb], verbose=0)
    expected = regression_metrics(targets(xv), model.predict(xv, verbose=0))
    assert cb.last_record["per_dim"]["arousal"]["ccc"] == pytest.approx(expected["per_dim"]["arousal"]["ccc"], abs=1e-6)
    for key in ("rmse", "corr", "sagr", "ccc"):
        assert history.history[f"val_{key}_mean"][-1] == pytest.approx(expected["mean"][key], abs=1e-6)
        assert f"val_{key}/valence" in history.history
    assert history.history["val_loss"][-1] == pytest.approx(
        model.evaluate(xv, targets(xv), verbose=0)[0], rel=1e-5)


def test_diverged_model_gives_nan_logs_not_a_crash() -> None:
    xv, yv = _data(16, 3, 16)
    model = _model(3, bn=False)
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    cb = PerClassMetrics((xv, yv), class_names=NAMES)
    cb.set_model(model)
    cb.set_params({"epochs": 1})
    logs: dict[str, float] = {}
    cb.on_epoch_end(0, logs)
    assert math.isnan(logs["val_macro_f1"]) and math.isnan(logs["val_recall/very happy"])
    assert "diverged" in cb.last_record["notes"][0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"validation_data": "val.csv"}, "validation_data must be"),
        ({"validation_data": (np.zeros((2, 3)), None)}, "without labels"),
        ({"task": "segmentation"}, "task 'segmentation'"),
        ({"every": 0}, "every=0"),
        ({"confusion_image": True}, "needs tensorboard_dir"),
        ({"validation_data": tf.data.Dataset.range(3), "batch_size": 4}, "only for array data"),
    ],
)
def test_bad_arguments_raise_config_errors(kwargs: dict, match: str) -> None:
    arguments = {"validation_data": (np.zeros((2, 3)), np.zeros(2))} | kwargs
    with pytest.raises(ConfigError, match=match):
        PerClassMetrics(**arguments)
