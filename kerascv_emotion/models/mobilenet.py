"""MobileNet v1 (Howard et al. 2017) as used by Hewitt & Gunes (2018), with plain ReLU."""

from __future__ import annotations

from numbers import Real

import keras
from keras import layers

from kerascv_emotion.errors import ConfigError
from kerascv_emotion.models.blocks import (
    BN_MOMENTUM,
    HEAD_START,
    check_rate,
    conv_bn_relu,
    image_input,
    output_layer,
)
from kerascv_emotion.models.registry import register_model

# (pointwise filters, depthwise stride) of the 13 depthwise-separable blocks.
MOBILENET_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


def _width(filters: int, alpha: float) -> int:
    """Channels of a layer under width multiplier ``alpha`` (``int(filters * alpha)``, as Keras)."""
    scaled = int(filters * alpha)
    if scaled < 1:
        raise ConfigError(f"alpha={alpha!r}: too small, a layer of {filters} filters gets none")
    return scaled


@register_model("mobilenet")
def mobilenet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    head: str,
    alpha: float = 1.0,
    dropout: float = 0.3,
) -> keras.Model:
    """Stem ``stem_conv`` (3x3x32, stride 2) -> BN -> ReLU; 13 depthwise-separable blocks
    ``block<N>`` (``block<N>_dw``: 3x3 depthwise no bias -> BN -> ReLU, then ``block<N>_pw``:
    1x1 conv no bias -> BN -> ReLU) with filters/strides 64/1, 128/2, 128/1, 256/2, 256/1,
    512/2, 5 x 512/1, 1024/2, 1024/1, all scaled by width multiplier ``alpha``;
    GlobalAveragePooling2D (:data:`HEAD_START`); Dropout(``dropout``); the output layer.

    Same padding throughout, so the output stride is 32. 3,237,064 parameters at 128x128x3 with
    8 classes and ``alpha=1``. Call through ``build_model``.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or alpha <= 0:
        raise ConfigError(f"alpha={alpha!r}: give a positive width multiplier (e.g. 0.5, 1.0)")
    dropout = check_rate("dropout", dropout)
    inputs = image_input(input_shape)
    x = conv_bn_relu(inputs, _width(32, alpha), 3, name="stem_conv", strides=2)
    for index, (filters, strides) in enumerate(MOBILENET_BLOCKS, start=1):
        block = f"block{index}"
        x = layers.DepthwiseConv2D(
            3, strides=strides, padding="same", use_bias=False, name=f"{block}_dw"
        )(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{block}_dw_bn")(x)
        x = layers.ReLU(name=f"{block}_dw_relu")(x)
        x = conv_bn_relu(x, _width(filters, alpha), 1, name=f"{block}_pw")
    x = layers.GlobalAveragePooling2D(name=HEAD_START)(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    return keras.Model(inputs, output_layer(x, num_classes, head), name="mobilenet")
