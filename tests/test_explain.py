"""Grad-CAM: the map of a tiny model trained on a cue in one quadrant peaks in that quadrant;
re-initialising the last convolution changes it (Adebayo et al. 2018's model-randomisation
check); every registered architecture gets a map; `explain` and `predict --explain` write overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kerascv_emotion.explain import GradCam, heat_overlay, target_layer

SIZE = 32


def _quadrant_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``(n, 32, 32, 3)`` of noise; class 1 has a bright 6x6 square somewhere in the
    top-left quadrant, class 0 none."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 120, size=(n, SIZE, SIZE, 3)).astype(np.uint8)
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        top, left = rng.integers(0, SIZE // 2 - 6, size=2)
        x[i, top:top + 6, left:left + 6] = 255
    return x, y


@pytest.fixture(scope="module")
def quadrant_model() -> object:
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    h = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    h = layers.MaxPooling2D(2)(h)
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(h)
    h = layers.GlobalAveragePooling2D(name="head_start")(h)
    model = keras.Model(inputs, layers.Dense(2, activation="softmax", name="predictions")(h))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _quadrant_data(256, 0)
    model.fit(x / np.float32(255), y, epochs=8, batch_size=32, verbose=0)
    return model


def test_map_peaks_in_the_cue_quadrant(quadrant_model: object) -> None:
    x, y = _quadrant_data(40, 1)
    cam = GradCam(quadrant_model)
    assert cam.layer == "last_conv"
    maps, ids = cam(x[y == 1], np.ones(20, dtype=int))
    assert maps.shape == (20, SIZE, SIZE) and maps.max() <= 1.0 and maps.min() >= 0.0
    assert (ids == 1).all()
    half = SIZE // 2
    peaks = [np.unravel_index(np.argmax(m), m.shape) for m in maps]
    assert np.mean([r < half and c < half for r, c in peaks]) >= 0.9
    quadrant = maps[:, :half, :half].mean()
    assert quadrant > 2 * maps[:, half:, :].mean() and quadrant > 2 * maps[:, :half, half:].mean()


def test_randomising_the_last_convolution_changes_the_map(quadrant_model: object) -> None:
    import keras

    x, y = _quadrant_data(40, 1)
    before, _ = GradCam(quadrant_model)(x[y == 1], np.ones(20, dtype=int))
    randomised = keras.models.clone_model(quadrant_model)
    randomised.set_weights(quadrant_model.get_weights())
    np.testing.assert_allclose(GradCam(randomised)(x[y == 1], np.ones(20, dtype=int))[0], before, atol=1e-5)
    conv = randomised.get_layer("last_conv")
    rng = np.random.default_rng(5)
    conv.set_weights([rng.normal(0.0, 0.3, w.shape).astype(np.float32) for w in conv.get_weights()])
    after, _ = GradCam(randomised)(x[y == 1], np.ones(20, dtype=int))
    change = np.abs(before - after).mean()  # 0.15 against a mean map value of 0.06 when written
    assert change > 0.1 and change > before.mean()


@pytest.mark.parametrize(("arch", "options", "default", "last"), [
    ("alexnet", {}, "block3_conv_relu", "block5_conv_relu"), ("vgg", {}, "block3_conv2_relu", "block5_conv2_relu"),
    ("mobilenet", {"alpha": 0.25}, "block3_pw_relu", "block13_pw_relu"), ("covid", {}, "block3_conv", "block6_relu"),
    ("keras:MobileNetV2", {}, "block_3_expand_relu", "out_relu"),
])
def test_every_architecture_gets_a_map(arch: str, options: dict, default: str, last: str) -> None:
    """At 32 px the last blocks are 1x1 or 2x2: the default layer is the last one at least 6x6."""
    from kerascv_emotion.models import build_model

    model = build_model(arch, input_shape=(SIZE, SIZE, 3), num_classes=3, head="classification", **options)
    assert target_layer(model) == default and target_layer(model, min_side=1) == last
    assert min(model.get_layer(default).output.shape[1:3]) >= 6
    for layer in (None, last):
        maps, ids = GradCam(model, layer)(np.random.default_rng(0).integers(0, 255, (2, SIZE, SIZE, 3)).astype(np.uint8))
        assert maps.shape == (2, SIZE, SIZE) and np.isfinite(maps).all() and ids.shape == (2,)


def test_heat_overlay_colours_only_the_box() -> None:
    from PIL import Image

    image = Image.new("L", (40, 30), 128)
    out = heat_overlay(image, np.ones((8, 8)), box=(10, 5, 20, 10))
    pixels = np.asarray(out)
    assert out.mode == "RGB" and out.size == (40, 30)
    assert (pixels[0, 0] == 128).all() and not (pixels[10, 20] == 128).all()


def test_explain_and_predict_explain_write_overlays(tiny_run: Path, tiny_faces: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from PIL import Image

    from kerascv_emotion.cli import main
    from kerascv_emotion.data.index import read_index

    index = read_index(tiny_faces)
    images = [index.root / r.path for r in index.records[:2]]
    runner = CliRunner()
    result = runner.invoke(main, ["explain", str(tiny_run), *map(str, images), "--out", str(tmp_path / "maps")],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "wrote 2 heat-map overlay(s)" in result.output
    written = sorted((tmp_path / "maps").glob("*.png"))
    assert [p.stem for p in written] == sorted(p.stem for p in images)
    plain = tmp_path / "plain"
    args = ["predict", str(tiny_run), str(images[0]), "--out", str(tmp_path / "p.csv"), "--annotate"]
    assert runner.invoke(main, [*args, str(plain)], catch_exceptions=False).exit_code == 0
    assert runner.invoke(main, [*args, str(tmp_path / "explained"), "--explain"], catch_exceptions=False).exit_code == 0
    with Image.open(plain / f"{images[0].stem}.png") as a, Image.open(tmp_path / "explained" / f"{images[0].stem}.png") as b:
        assert a.size == b.size and np.abs(np.asarray(a.convert("RGB"), float) - np.asarray(b.convert("RGB"), float)).mean() > 5
    refused = runner.invoke(main, ["predict", str(tiny_run), str(images[0]), "--out", str(tmp_path / "q.csv"), "--explain"])
    assert refused.exit_code == 1 and "Error: --explain" in refused.output and "--annotate" in refused.output


def test_select_gallery_picks_the_most_confident() -> None:
    from kerascv_emotion.explain import select_gallery

    y_true = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    y_prob = np.array([[0.9, 0.05, 0.05], [0.6, 0.2, 0.2], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1],
                       [0.5, 0.4, 0.1], [0.95, 0.03, 0.02], [0.3, 0.3, 0.4], [0.1, 0.85, 0.05]])
    ids, kinds = select_gallery(y_true, y_prob, per_class=1, cells=2, per_cell=2)
    # said 0: right 0 (0.9), wrong 5 (0.95); said 1: right 3 (0.8), wrong 7 (0.85); said 2: right 6
    # cells (true, predicted) with 1 image each: (0, 1) [2], (1, 0) [5, 4] (two), (2, 1) [7]
    assert list(zip(ids.tolist(), kinds.tolist(), strict=True)) == [
        (0, "correct"), (5, "wrong"), (3, "correct"), (7, "wrong"), (6, "correct"),
        (5, "confusion"), (4, "confusion"), (2, "confusion")]


def test_a_model_without_the_library_head_is_refused_in_one_line(tmp_path: Path) -> None:
    import keras

    from kerascv_emotion.errors import ConfigError
    from kerascv_emotion.explain import write_gallery

    inputs = keras.Input((8, 8, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, padding="same")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="out")(h))
    with pytest.raises(ConfigError, match="'predictions'"):
        GradCam(model)
    with pytest.raises(ConfigError, match="no layer 'nope'"):
        GradCam(model, "nope")
    write_gallery(tmp_path / "gallery.npz", model, np.zeros((2, 8, 8, 3), np.uint8), np.array([0, 1]),
                  np.array([[0.6, 0.4], [0.3, 0.7]]))
    assert not (tmp_path / "gallery.npz").exists()
