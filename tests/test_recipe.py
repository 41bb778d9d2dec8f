"""Issue 19's recipe ingredients: mixup/cutmix batches, the crop_erase pipeline, weight EMA,
five-crop test-time augmentation and each epoch's seconds in the history."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from kerascv_emotion.augment import get_augmentation, mix_batch


def _batch(n: int = 16, size: int = 12, classes: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8)
    labels = np.arange(n) % classes
    return images, np.eye(classes, dtype=np.float32)[labels], np.linspace(0.5, 2.0, n, dtype=np.float32)


@pytest.mark.parametrize(("mixup", "cutmix"), [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_mixed_batches_keep_label_sums_and_repeat_per_seed(mixup: float, cutmix: float) -> None:
    images, y, weights = _batch()
    first = mix_batch(images, y, weights, np.random.default_rng(7), mixup, cutmix)
    again = mix_batch(images, y, weights, np.random.default_rng(7), mixup, cutmix)
    other = mix_batch(images, y, weights, np.random.default_rng(8), mixup, cutmix)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    mixed_images, mixed_y, mixed_weights = first
    assert mixed_images.dtype == np.uint8 and mixed_images.shape == images.shape
    np.testing.assert_allclose(mixed_y.sum(axis=1), 1.0, rtol=1e-6)
    assert not np.array_equal(mixed_y, y)
    assert mixed_weights.min() >= weights.min() - 1e-6 and mixed_weights.max() <= weights.max() + 1e-6


def test_cutmix_label_weight_is_the_pasted_area() -> None:
    images, y, _ = _batch()
    for seed in range(5):
        mixed, mixed_y, _ = mix_batch(images, y, None, np.random.default_rng(seed), 0.0, 1.0)
        changed = (mixed != images).any(axis=(0, 3)).mean()  # fraction of pixels from the partner
        kept = mixed_y[np.arange(len(y)), y.argmax(axis=1)]
        # each row keeps 1 - area of its own label (plus the partner's share when both share a class)
        assert kept.min() == pytest.approx(1.0 - changed, abs=1e-6) or changed == 0


def test_no_alpha_leaves_the_batch_alone() -> None:
    images, y, weights = _batch()
    out = mix_batch(images, y, weights, np.random.default_rng(0))
    assert out[0] is images and out[1] is y and out[2] is weights


def test_loader_mixes_the_training_stream_only(tiny_faces: Path) -> None:
    from kerascv_emotion.data.cache import load_split
    from kerascv_emotion.data.index import read_index
    from kerascv_emotion.data.loader import ImageBatches

    split = load_split(read_index(tiny_faces), "train", 32, 3, cache_dir=None)
    batches = ImageBatches(split, batch_size=8, augment=None, seed=3, mixup_alpha=0.4)
    plain_x, plain_y = batches.batch_arrays(1, 0)
    mixed_x, mixed_y = batches.batch_arrays(1, 0, mix=True)
    again_x, again_y = batches.batch_arrays(1, 0, mix=True)
    np.testing.assert_array_equal(mixed_x, again_x)
    np.testing.assert_array_equal(mixed_y, again_y)
    assert not np.array_equal(mixed_y, plain_y) and set(np.unique(plain_y)) == {0.0, 1.0}
    np.testing.assert_allclose(mixed_y.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(batches[0][1]), batches.batch_arrays(batches.epoch, 0)[1])


def test_crop_erase_keeps_the_shape_and_repeats_per_seed() -> None:
    image = np.random.default_rng(0).integers(0, 256, (48, 48, 1), dtype=np.uint8)
    first = get_augmentation("crop_erase", seed=4)(image=image)["image"]
    again = get_augmentation("crop_erase", seed=4)(image=image)["image"]
    assert first.shape == image.shape and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, image)


def test_tta_crops_are_five_crops_and_their_mirrors() -> None:
    import keras

    from kerascv_emotion.inference import TTA_CROP_FRACTION, predict_batches, to_input, tta_views

    images = np.random.default_rng(2).integers(0, 256, (3, 16, 16, 1), dtype=np.uint8)
    x = to_input(images)
    views = tta_views(x, "crops")
    assert len(views) == 10 and all(v.shape == x.shape for v in views)
    side = round(16 * TTA_CROP_FRACTION)
    top_left = np.asarray(keras.ops.image.resize(x[:, :side, :side], (16, 16), interpolation="bilinear"))
    np.testing.assert_allclose(views[0], top_left, rtol=1e-6)
    np.testing.assert_array_equal(views[5], views[0][:, :, ::-1])
    assert not np.allclose(views[0], views[3])

    inputs = keras.Input((16, 16, 1))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))
    expected = np.mean([model.predict_on_batch(v) for v in views], axis=0)
    np.testing.assert_allclose(predict_batches(model, images, 3, "crops"), expected, rtol=1e-5)


def test_ema_weights_are_validated_and_saved_raw_weights_trained() -> None:
    import keras

    from kerascv_emotion.callbacks import EMAWeights

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    model.compile(optimizer=keras.optimizers.Adam(0.05, use_ema=True, ema_momentum=0.9),
                  loss="categorical_crossentropy")
    seen: dict[str, list[list[np.ndarray]]] = {"validated": [], "averages": [], "raw": []}

    class Look(keras.callbacks.Callback):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seen[self.key].append([np.array(v.numpy()) for v in self.model.trainable_variables])
            if self.key == "validated":
                averages = self.model.optimizer._model_variables_moving_average
                seen["averages"].append([np.array(v.numpy()) for v in averages])

    ema = EMAWeights()
    x = np.random.default_rng(0).random((64, 4), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(64) % 3]
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False,
              callbacks=[ema.swap_in, Look("validated"), ema.swap_out, Look("raw")])
    for validated, averages, raw in zip(seen["validated"], seen["averages"], seen["raw"], strict=True):
        for v, a in zip(validated, averages, strict=True):
            np.testing.assert_array_equal(v, a)
        assert not all(np.allclose(v, r) for v, r in zip(validated, raw, strict=True))


@pytest.mark.slow
def test_an_ema_run_saves_the_ema_weights_and_logs_epoch_seconds(tiny_faces: Path, tmp_path: Path) -> None:
    import keras

    from kerascv_emotion.runs import load_model
    from kerascv_emotion.settings import TrainSettings
    from kerascv_emotion.training import train

    settings = TrainSettings(arch="alexnet", index=str(tiny_faces), image_size=32, epochs=2, batch_size=8,
                             augment=None, precise_bn_images=0, ema_momentum=0.5, mixup_alpha=0.2,
                             cutmix_alpha=1.0, monitor="loss")
    run = train(settings, tmp_path / "ema", verbose=0)
    with open(run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(float(r["epoch_seconds"]) > 0 for r in rows)
    model = load_model(run / "model.keras")
    optimizer = model.optimizer
    assert optimizer.use_ema and optimizer.ema_momentum == 0.5
    averages = optimizer._model_variables_moving_average
    assert averages, "the saved optimizer holds its moving averages"
    weights = model.trainable_variables
    for variable, average in zip(weights, averages, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), keras.ops.convert_to_numpy(average))
