"""``keras:<Name>`` models: a ``keras.applications`` backbone (``include_top=False``) with the
application's own input preprocessing inside the model, then GlobalAveragePooling2D
(:data:`HEAD_START`), Dropout and the output layer.

Inputs are float32 RGB images in [0, 1], like every other model here; a preprocessing layer
named ``"preprocess"`` maps them to what the application expects. The backbone's layers sit
directly in the returned model (not nested), so ``model.get_layer`` finds each of them.

Nothing is downloaded: ``weights`` is ``None`` (random initialisation) or the path of a local
weights file for the same application with ``include_top=False``, such as Keras's
``*_notop.h5`` ImageNet files.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import keras
from keras import layers

from kerascv_emotion.errors import ConfigError
from kerascv_emotion.model_catalog import APPLICATIONS, Application
from kerascv_emotion.models.blocks import HEAD_START, check_rate, image_input, output_layer

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def application_model_name(name: str) -> str:
    """The Keras model name given to ``keras:<name>`` models (``"keras_<name>"``)."""
    return f"keras_{name}"


def block_patterns(model_name: str) -> tuple[str, ...] | None:
    """The block regexes of a model named by :func:`application_model_name`, else ``None``."""
    for name, app in APPLICATIONS.items():
        if application_model_name(name) == model_name:
            return app.blocks
    return None


def _check_weights(name: str, weights: str | os.PathLike | None) -> str | None:
    """Return ``weights`` as a local file path, or ``None``; refuse anything to download."""
    if weights is None:
        return None
    if not isinstance(weights, str | os.PathLike) or not Path(weights).is_file():
        raise ConfigError(
            f"keras:{name} weights={weights!r}: not a local file; give the path of a Keras "
            f"weights file for {name} with include_top=False (e.g. its *_notop.h5), or no "
            "weights (None) - nothing is downloaded"
        )
    return str(weights)


def _preprocess(
    x: keras.KerasTensor, app: Application, pretrained: bool
) -> keras.KerasTensor:
    """Map [0, 1] RGB inputs to what the application expects (layer ``"preprocess"``)."""
    if app.preprocessing == "tf":
        return layers.Rescaling(2.0, offset=-1.0, name="preprocess")(x)
    if app.preprocessing == "caffe":
        bgr = keras.ops.flip(x, axis=-1)
        offset = [-mean for mean in CAFFE_MEAN_BGR]
        return layers.Rescaling(255.0, offset=offset, name="preprocess")(bgr)
    if app.preprocessing == "torch":
        scale = [1.0 / std for std in IMAGENET_STD_RGB]
        offset = [-mean / std for mean, std in zip(IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, strict=True)]
        return layers.Rescaling(scale, offset=offset, name="preprocess")(x)
    if app.efficientnet_v1 and pretrained:
        # Keras's EfficientNet ImageNet files store the std as the Normalization variance, and
        # Keras adds Rescaling(1/sqrt(std)) after it only for weights="imagenet". The same
        # correction, moved in front of Normalization: y = c * x + mean * (1 - c), c = 1/sqrt(std).
        factors = [1.0 / math.sqrt(std) for std in IMAGENET_STD_RGB]
        scale = [255.0 * c for c in factors]
        offset = [255.0 * m * (1.0 - c) for m, c in zip(IMAGENET_MEAN_RGB, factors, strict=True)]
        return layers.Rescaling(scale, offset=offset, name="preprocess")(x)
    return layers.Rescaling(255.0, name="preprocess")(x)


def build_application(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    head: str,
    weights: str | os.PathLike | None = None,
    dropout: float = 0.2,
) -> keras.Model:
    """Build ``keras:<name>``: image -> preprocess -> backbone -> GlobalAveragePooling2D
    (:data:`HEAD_START`) -> Dropout(``dropout``) (``head_dropout``) -> output layer.

    ``name`` is a key of :data:`APPLICATIONS` (in ``model_catalog``, as are its options);
    ``input_shape`` must have 3 (RGB) channels. For ``EfficientNetB*`` with a weights file,
    the file is taken to be Keras's ImageNet file and the input correction that Keras applies
    for ``weights="imagenet"`` is applied too. Call through ``build_model("keras:<name>")``.
    """
    app = APPLICATIONS[name]
    if input_shape[-1] != 3:
        raise ConfigError(
            f"keras:{name} input_shape={input_shape!r}: keras.applications backbones take RGB "
            "images; set channels to 3"
        )
    weights_path = _check_weights(name, weights)
    rate = check_rate("dropout", dropout)
    inputs = image_input(input_shape)
    x = _preprocess(inputs, app, pretrained=weights_path is not None)
    try:
        backbone = getattr(keras.applications, name)(
            include_top=False,
            weights=weights_path,
            input_tensor=x,
            input_shape=input_shape,
            **app.options,
        )
    except (ValueError, OSError) as exc:  # bad size/channels, unreadable or mismatched weights
        raise ConfigError(f"keras:{name}: {exc}") from exc
    x = layers.GlobalAveragePooling2D(name=HEAD_START)(backbone.output)
    x = layers.Dropout(rate, name="head_dropout")(x)
    outputs = output_layer(x, num_classes, head)
    return keras.Model(inputs, outputs, name=application_model_name(name))
