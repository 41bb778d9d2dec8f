"""Tests for kerascv_emotion.models: architectures, heads, registry, helpers, save/load."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from kerascv_emotion.errors import ConfigError
from kerascv_emotion.models import (
    HEAD_START,
    PREDICTIONS,
    available_models,
    backbone_blocks,
    build_model,
    head_start_layer,
    replace_predictions,
)

BUILTINS = ["alexnet", "vgg", "mobilenet", "covid"]

# (num_classes, head) -> (output units, output activation)
OUTPUTS = [
    (8, "classification", 8, "softmax"),
    (2, "classification", 2, "softmax"),
    (1, "classification", 1, "sigmoid"),
    (8, "regression", 2, "linear"),
]


def _conv_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if type(layer) is keras.layers.Conv2D]


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("alexnet", "classification", 3_464_952),
        ("vgg", "classification", 3_753_016),
        ("mobilenet", "classification", 3_237_064),
        ("alexnet", "regression", 3_458_802),
        ("vgg", "regression", 3_746_866),
        ("mobilenet", "regression", 3_230_914),
    ],
)
def test_paper_parameter_counts(name: str, head: str, expected: int) -> None:
    model = build_model(name, input_shape=(128, 128, 3), num_classes=8, head=head)
    assert model.count_params() == expected


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize(("num_classes", "head", "units", "activation"), OUTPUTS)
@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_outputs(
    name: str, size: int, num_classes: int, head: str, units: int, activation: str
) -> None:
    model = build_model(name, input_shape=(size, size, 3), num_classes=num_classes, head=head)
    assert model.name == name
    assert model.input_shape == (None, size, size, 3)
    assert model.output_shape == (None, units)
    output = model.get_layer(PREDICTIONS)
    assert output is model.layers[-1]
    assert output.get_config()["activation"] == activation
    prediction = np.asarray(model(np.zeros((1, size, size, 3), dtype="float32")))
    assert prediction.shape == (1, units)
    assert np.all(np.isfinite(prediction))
    if activation == "softmax":
        np.testing.assert_allclose(prediction.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtins_build_at_32_px_grayscale(name: str) -> None:
    model = build_model(name, input_shape=(32, 32, 1), num_classes=3)
    assert model.output_shape == (None, 3)
    assert model(np.zeros((1, 32, 32, 1), dtype="float32")).shape == (1, 3)


def test_alexnet_layers_follow_the_paper() -> None:
    model = build_model("alexnet", input_shape=(64, 64, 3))
    convs = _conv_layers(model)
    assert [(c.filters, c.kernel_size[0]) for c in convs] == [
        (16, 9), (32, 7), (64, 5), (128, 3), (128, 3)
    ]
    assert not any(c.use_bias for c in convs)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == 5
    for pool in pools:
        following = model.layers[model.layers.index(pool) + 1]
        assert isinstance(following, keras.layers.GaussianDropout)
        assert following.rate == pytest.approx(0.2)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [1024, 1024, 8]
    assert [d.use_bias for d in dense] == [False, False, True]
    dropouts = [layer for layer in model.layers if type(layer) is keras.layers.Dropout]
    assert [d.rate for d in dropouts] == [0.5, 0.5]


def test_vgg_pairs_of_convs() -> None:
    convs = _conv_layers(build_model("vgg", input_shape=(64, 64, 3)))
    assert [c.filters for c in convs] == [16, 16, 32, 32, 64, 64, 128, 128, 128, 128]
    assert {c.kernel_size for c in convs} == {(3, 3)}


def test_mobilenet_alpha_and_dropout() -> None:
    model = build_model("mobilenet", input_shape=(64, 64, 3), alpha=0.5, dropout=0.1)
    pointwise = [c.filters for c in _conv_layers(model)]
    assert pointwise[0] == 16 and pointwise[-1] == 512
    assert model.get_layer("head_dropout").rate == pytest.approx(0.1)
    strides = [
        layer.strides[0]
        for layer in model.layers
        if isinstance(layer, keras.layers.DepthwiseConv2D)
    ]
    assert strides == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]


def test_covid_blocks() -> None:
    model = build_model("covid", input_shape=(64, 64, 3), num_classes=2)
    convs = _conv_layers(model)
    assert [(c.filters, c.kernel_size[0]) for c in convs] == [
        (64, 3), (64, 3), (128, 3), (128, 3), (256, 3), (256, 1)
    ]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == 5
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [512, 256, 2]


def test_available_models() -> None:
    names = available_models()
    assert names[:4] == sorted(BUILTINS)
    for name in ("keras:MobileNetV2", "keras:EfficientNetB0", "keras:VGG16"):
        assert name in names


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "resnet9000"}, "alexnet"),
        ({"name": "keras:NoSuchNet"}, "keras:MobileNetV2"),
        ({"name": "vgg", "head": "ordinal"}, "head"),
        ({"name": "vgg", "num_classes": 0}, "num_classes"),
        ({"name": "vgg", "input_shape": (64, 64)}, "input_shape"),
        ({"name": "vgg", "alpha": 0.5}, "alpha"),
        ({"name": "mobilenet", "alpha": 0.0}, "alpha"),
        ({"name": "covid", "dropout": 1.5}, "dropout"),
        ({"name": "keras:MobileNetV2", "input_shape": (32, 32, 1)}, "channels"),
        ({"name": "keras:MobileNetV2", "weights": "imagenet"}, "nothing is downloaded"),
        ({"name": "keras:VGG16", "weights": "/no/such/file.h5"}, "not a local file"),
    ],
)
def test_bad_settings_raise_config_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(**kwargs)


def test_save_load_round_trip(tmp_path) -> None:
    model = build_model("alexnet", input_shape=(32, 32, 3), num_classes=3)
    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    expected = model.predict(images, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.name == "alexnet"
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), expected)
    assert backbone_blocks(loaded) == backbone_blocks(model)


@pytest.fixture(scope="module")
def mobilenet_v2() -> keras.Model:
    return build_model("keras:MobileNetV2", input_shape=(32, 32, 3), num_classes=3)


def test_keras_application_trains_saves_and_loads(mobilenet_v2: keras.Model, tmp_path) -> None:
    model = mobilenet_v2
    assert model.name == "keras_MobileNetV2"
    assert model.get_layer(PREDICTIONS).get_config()["activation"] == "softmax"
    rng = np.random.default_rng(1)
    images = rng.random((4, 32, 32, 3), dtype=np.float32)
    labels = keras.utils.to_categorical([0, 1, 2, 0], 3)
    # Eager: tracing MobileNetV2's train graph takes minutes on a small shared CPU box.
    model.compile(optimizer="adam", loss="categorical_crossentropy", run_eagerly=True)
    history = model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    expected = np.asarray(model(images, training=False))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        np.asarray(loaded(images, training=False)), expected, rtol=1e-5, atol=1e-6
    )
    assert backbone_blocks(loaded) == backbone_blocks(model)


@pytest.mark.parametrize(
    ("name", "module"), [("MobileNetV2", "mobilenet_v2"), ("VGG16", "vgg16")]
)
def test_keras_preprocessing_matches_application(name: str, module: str) -> None:
    model = build_model(f"keras:{name}", input_shape=(32, 32, 3), num_classes=2)
    preprocess = keras.Model(model.input, model.get_layer("preprocess").output)
    images = np.random.default_rng(2).random((2, 32, 32, 3), dtype=np.float32)
    reference = getattr(keras.applications, module).preprocess_input(images * 255.0)
    np.testing.assert_allclose(np.asarray(preprocess(images)), reference, atol=1e-3)


def test_keras_caffe_preprocessing_survives_save_load(tmp_path) -> None:
    # VGG16's RGB -> BGR flip is a keras.ops call inside the graph, not a custom layer.
    model = build_model("keras:VGG16", input_shape=(32, 32, 3), num_classes=2)
    images = np.random.default_rng(4).random((2, 32, 32, 3), dtype=np.float32)
    model.save(tmp_path / "vgg16.keras")
    loaded = keras.saving.load_model(tmp_path / "vgg16.keras")
    for layer_name in ("preprocess", PREDICTIONS):
        np.testing.assert_allclose(
            np.asarray(keras.Model(loaded.input, loaded.get_layer(layer_name).output)(images)),
            np.asarray(keras.Model(model.input, model.get_layer(layer_name).output)(images)),
            rtol=1e-5,
            atol=1e-5,
        )


def test_keras_application_loads_local_weights(tmp_path) -> None:
    reference = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    reference.save_weights(path)
    model = build_model("keras:VGG16", input_shape=(32, 32, 3), weights=str(path))
    np.testing.assert_array_equal(
        model.get_layer("block5_conv3").kernel.numpy(),
        reference.get_layer("block5_conv3").kernel.numpy(),
    )


def test_efficientnet_file_gets_keras_imagenet_input_correction(tmp_path) -> None:
    # Keras's EfficientNet ImageNet files hold the std as the Normalization variance; with
    # the correction the normalised input must be (x - mean) / std, as for weights="imagenet".
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    reference = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=(32, 32, 3)
    )
    norm = next(lay for lay in reference.layers if isinstance(lay, keras.layers.Normalization))
    norm.adapt_mean.assign(mean.astype("float32"))
    norm.adapt_variance.assign(std.astype("float32"))
    path = tmp_path / "efficientnetb0_notop.weights.h5"
    reference.save_weights(path)
    model = build_model("keras:EfficientNetB0", input_shape=(32, 32, 3), weights=str(path))
    norm = next(lay for lay in model.layers if isinstance(lay, keras.layers.Normalization))
    normalised = keras.Model(model.input, norm.output)
    images = np.random.default_rng(3).random((2, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(normalised(images)), (images - mean) / std, atol=1e-4)


def _head(model: keras.Model) -> list[str]:
    """Names of the head's layers in order: :func:`head_start_layer` and every later layer."""
    names = [layer.name for layer in model.layers]
    return names[names.index(head_start_layer(model)):]


@pytest.mark.parametrize(
    ("name", "n_blocks", "first"),
    [
        ("alexnet", 5, "block1_conv"),
        ("vgg", 5, "block1_conv1"),
        ("mobilenet", 14, "stem_conv"),
        ("covid", 6, "block1_conv"),
    ],
)
def test_head_and_backbone_helpers(name: str, n_blocks: int, first: str) -> None:
    model = build_model(name, input_shape=(32, 32, 3))
    assert head_start_layer(model) == HEAD_START
    head = _head(model)
    assert head[0] == HEAD_START and head[-1] == PREDICTIONS
    assert isinstance(
        model.get_layer(HEAD_START),
        keras.layers.Flatten | keras.layers.GlobalAveragePooling2D,
    )
    blocks = backbone_blocks(model)
    assert len(blocks) == n_blocks
    assert blocks[0][0] == first
    in_blocks = [layer for block in blocks for layer in block]
    assert len(in_blocks) == len(set(in_blocks))
    assert not set(in_blocks) & set(head)
    weighted = {
        layer.name for layer in model.layers if layer.weights and layer.name not in head
    }
    assert weighted <= set(in_blocks)
    renamed = keras.Model(model.inputs, model.outputs, name="renamed")
    assert backbone_blocks(renamed) == blocks


def test_keras_application_blocks(mobilenet_v2: keras.Model) -> None:
    blocks = backbone_blocks(mobilenet_v2)
    assert len(blocks) == 19  # stem, expanded_conv, block_1 .. block_16, top conv
    assert blocks[0][0] == "Conv1"
    assert blocks[2][0] == "block_1_expand"
    assert "Conv_1" in blocks[-1]
    assert _head(mobilenet_v2) == [HEAD_START, "head_dropout", PREDICTIONS]


def test_helpers_refuse_foreign_models() -> None:
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ConfigError, match=HEAD_START):
        head_start_layer(model)
    with pytest.raises(ConfigError, match=HEAD_START):
        backbone_blocks(model)


def test_replace_predictions() -> None:
    model = build_model("vgg", input_shape=(32, 32, 3), num_classes=8)
    new = replace_predictions(model, num_classes=3)
    assert new.output_shape == (None, 3)
    assert new.get_layer("fc2") is model.get_layer("fc2")
    assert new.get_layer(PREDICTIONS) is not model.get_layer(PREDICTIONS)
    regression = replace_predictions(model, num_classes=8, head="regression")
    assert regression.output_shape == (None, 2)
    assert regression.get_layer(PREDICTIONS).get_config()["activation"] == "linear"
