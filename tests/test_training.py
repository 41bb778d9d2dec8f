"""train / tune: class weights, tuning phases, task change to valence/arousal, seeded
reproducibility and resuming after SIGKILL."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import start_paused_cli
from sklearn.utils.class_weight import compute_class_weight

from kerascv_emotion.finetune import set_trainable, tune
from kerascv_emotion.resume import BACKUP_WEIGHTS, backup_epochs
from kerascv_emotion.settings import TrainSettings, TuneSettings
from kerascv_emotion.training import train


def _train_cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m kerascv_emotion *args`` to the end, its output captured."""
    return subprocess.run([sys.executable, "-m", "kerascv_emotion", *args], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=600)


def _history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_class_weights_match_scikit_learn() -> None:
    from kerascv_emotion.data.loader import class_weights

    labels = np.array([0] * 10 + [1] * 3 + [2] * 7)
    ours = class_weights(labels, 3)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    assert ours == pytest.approx(dict(enumerate(expected)))


def test_tune_phases_set_documented_trainable_flags() -> None:
    import keras

    from kerascv_emotion.models import build_model, head_start_layer

    model = build_model("vgg", input_shape=(32, 32, 3), num_classes=8)
    names = [layer.name for layer in model.layers]
    head = set(names[names.index(head_start_layer(model)):])
    state = set_trainable(model, "head")
    for layer in model.layers:
        has_weights = bool(layer.weights)
        if layer.name in head:
            assert state[layer.name] or not has_weights, layer.name
        else:
            assert not state[layer.name], layer.name
    state = set_trainable(model, "finetune")
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert not layer.trainable  # BN stays in inference mode while fine-tuning
        else:
            assert layer.trainable, layer.name
    state = set_trainable(model, "finetune", unfreeze_blocks=1)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs[-1].trainable and not convs[0].trainable
    assert model.get_layer("predictions").trainable


@pytest.mark.slow
def test_same_seed_same_metrics_and_tune_to_regression(tiny_faces: Path, tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        settings = TrainSettings(arch="alexnet", index=str(tiny_faces), image_size=32, epochs=2, batch_size=8,
                                 seed=5, augment="paper_face", deterministic=True)
        runs.append(train(settings, tmp_path / name, verbose=0))
    first, second = (_history(r) for r in runs)
    assert len(first) == 2
    for row_a, row_b in zip(first, second, strict=True):
        for key in ("loss", "val_loss", "val_accuracy", "val_macro_f1"):
            assert row_a[key] == row_b[key], key
    assert (runs[0] / "metrics_log.jsonl").read_text() == (runs[1] / "metrics_log.jsonl").read_text()

    va = tune(TuneSettings.create(str(runs[0]), str(tiny_faces), task="regression", head_epochs=1,
                                  finetune_epochs=1, batch_size=8, class_weight=None), tmp_path / "va", verbose=0)
    history = _history(va)
    assert [row["phase"] for row in history] == ["head", "finetune"]
    assert np.isfinite(float(history[-1]["val_ccc_mean"]))
    config = json.loads((va / "config.json").read_text())
    assert config["task"] == "regression" and config["new_head"] is True
    assert [p["name"] for p in config["phases"]] == ["head", "finetune"]

    from kerascv_emotion.evaluation import evaluate

    metrics = evaluate(va, split="test", bootstrap=0)
    assert set(metrics["per_dim"]) == {"valence", "arousal"}
    assert -1.0 <= metrics["mean"]["ccc"] <= 1.0


@pytest.mark.slow
def test_sigkill_mid_training_then_rerun_finishes(tiny_faces: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["train", "--index", str(tiny_faces), "--arch", "vgg", "--image-size", "32", "--epochs", "5",
            "--batch-size", "4", "--out", str(run), "--seed", "1"]
    proc = start_paused_cli(args, 2, tmp_path)  # stopped inside the third epoch
    assert len((run / "work" / "history-train.csv").read_text().splitlines()) == 3  # header + 2 epochs
    assert backup_epochs(run / "work" / "backup-train" / BACKUP_WEIGHTS) == 2
    proc.kill()
    proc.wait()
    assert not (run / "model.keras").exists()

    rerun = _train_cli(args)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    epochs_printed = [line for line in rerun.stdout.splitlines() if line.startswith("Epoch ")]
    assert [line.split()[1] for line in epochs_printed] == ["3/5", "4/5", "5/5"], epochs_printed
    history = _history(run)
    assert [int(r["epoch"]) for r in history] == list(range(5))
    assert (run / "model.keras").is_file() and not (run / "work").exists()


@pytest.mark.parametrize(("optimizer", "schedule", "warmup"),
                         [("adam", "constant", 0), ("adamw", "cosine", 1), ("sgd", "cosine", 0), ("sgd", "constant", 0)])
def test_each_optimizer_and_schedule_trains(optimizer: str, schedule: str, warmup: int) -> None:
    import keras

    from kerascv_emotion.models import build_model
    from kerascv_emotion.training import compile_model, make_optimizer

    settings = TrainSettings(arch="alexnet", index="unused.csv", epochs=3, optimizer=optimizer, lr_schedule=schedule,
                             warmup_epochs=warmup, weight_decay=1e-4, label_smoothing=0.1)
    settings.check()
    model = build_model("alexnet", input_shape=(32, 32, 3), num_classes=3)
    optimizer_object = make_optimizer(settings, 1e-2, steps_per_epoch=4, epochs=3)
    compile_model(model, settings, optimizer_object)
    assert model.loss.label_smoothing == pytest.approx(0.1)
    before = [w.numpy().copy() for w in model.trainable_weights]
    x = np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32)
    history = model.fit(x, np.eye(3)[np.arange(8) % 3], batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights, strict=True))
    expected = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "sgd": keras.optimizers.SGD}
    assert type(optimizer_object) is expected[optimizer]
    if schedule == "cosine":
        rate = optimizer_object._learning_rate
        values = [float(rate(step)) for step in (0, 4, 12)]
        if warmup:  # linear warm-up from 0 over one epoch (4 steps), then cosine decay to 0
            assert values == pytest.approx([0.0, 1e-2, 0.0], abs=1e-7)
        else:
            assert values[0] == pytest.approx(1e-2) and values[2] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(("change", "words"), [
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"lr_schedule": "cosine", "reduce_lr_patience": 2}, "reduce_lr_patience"),
    ({"warmup_epochs": 1}, "warmup_epochs needs"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"precise_bn_images": 1}, "precise_bn_images"),
    ({"ema_momentum": 1.0}, "ema_momentum"),
    ({"mixup_alpha": -0.1}, "mixup_alpha"),
    ({"cutmix_alpha": float("inf")}, "cutmix_alpha"),
])
def test_recipe_settings_are_checked(change: dict, words: str) -> None:
    from kerascv_emotion.errors import ConfigError

    with pytest.raises(ConfigError, match=words):
        TrainSettings(arch="vgg", index="unused.csv", epochs=3, **change).check()


def test_tta_hflip_averages_image_and_mirror() -> None:
    import keras

    from kerascv_emotion.inference import predict_batches, to_input

    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(1).integers(0, 256, (6, 4, 4, 1), dtype=np.uint8)
    plain = predict_batches(model, images, batch_size=4)
    mirrored = np.asarray(model.predict_on_batch(to_input(images)[:, :, ::-1]), dtype=np.float64)
    assert not np.allclose(plain, mirrored)  # the model is not mirror-symmetric
    np.testing.assert_allclose(predict_batches(model, images, 4, "hflip"), (plain + mirrored) / 2, rtol=1e-6)


@pytest.mark.slow
def test_killed_and_resumed_run_equals_uninterrupted_run(tiny_faces: Path, tmp_path: Path) -> None:
    """Deterministic mode: kill -9 mid-run, start again, and the final model is bit-identical
    to an uninterrupted run's (weights, optimizer and epoch come from the backup; data order
    and dropout noise are functions of the seed and the epoch)."""
    import keras

    def args(run: Path) -> list[str]:
        return ["train", "--index", str(tiny_faces), "--arch", "vgg", "--image-size", "32", "--epochs", "6",
                "--batch-size", "4", "--out", str(run), "--seed", "3", "--deterministic", "--arch-option",
                "dropout=0.3", "--monitor", "val_loss"]

    whole = tmp_path / "whole"
    assert _train_cli(args(whole)).returncode == 0
    killed = tmp_path / "killed"
    proc = start_paused_cli(args(killed), 2, tmp_path)  # stopped inside the third epoch
    proc.kill()
    proc.wait()
    assert not (killed / "model.keras").exists()
    assert _train_cli(args(killed)).returncode == 0
    first = keras.saving.load_model(whole / "model.keras", compile=False)
    second = keras.saving.load_model(killed / "model.keras", compile=False)
    for a, b in zip(first.weights, second.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert _history(whole)[-1]["val_loss"] == _history(killed)[-1]["val_loss"]
