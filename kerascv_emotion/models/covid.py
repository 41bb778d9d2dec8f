"""COVID-19 chest X-ray CNN of Reshi et al. (2021), "An efficient CNN model for COVID-19 disease
detection based on X-ray image classification" (Complexity, 2021).

The paper gives no code; this follows the way public re-implementations describe it.
"""

from __future__ import annotations

import keras
from keras import layers

from kerascv_emotion.models.blocks import (
    BN_MOMENTUM,
    HEAD_START,
    check_rate,
    image_input,
    output_layer,
)
from kerascv_emotion.models.registry import register_model

# Filters of the five pooled 3x3 blocks; a sixth, 1x1 block of 256 filters has no pooling.
COVID_FILTERS = (64, 64, 128, 128, 256)
COVID_LAST_FILTERS = 256


def _block(x: keras.KerasTensor, index: int, filters: int, kernel: int, pool: bool,
           rate: float) -> keras.KerasTensor:
    """Conv2D (same padding, bias) -> [MaxPool 2, same padding] -> BN -> ReLU -> Dropout."""
    block = f"block{index}"
    x = layers.Conv2D(filters, kernel, padding="same", name=f"{block}_conv")(x)
    if pool:
        x = layers.MaxPooling2D(2, padding="same", name=f"{block}_pool")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{block}_bn")(x)
    x = layers.ReLU(name=f"{block}_relu")(x)
    return layers.Dropout(rate, name=f"{block}_dropout")(x)


@register_model("covid")
def covid(
    input_shape: tuple[int, int, int],
    num_classes: int,
    head: str,
    dropout: float = 0.2,
) -> keras.Model:
    """The CNN of Reshi et al. (2021) as re-implementations describe it: five blocks
    ``block1``..``block5`` of Conv 3x3 (64, 64, 128, 128, 256 filters) -> MaxPool 2 -> BN ->
    ReLU -> Dropout(``dropout``), a sixth block ``block6`` of Conv 1x1 (256) -> BN -> ReLU ->
    Dropout without pooling; Flatten (:data:`HEAD_START`); Dense 512 (ReLU) ``fc1``; Dense 256
    (ReLU) ``fc2``; the output layer.

    Pools use same padding, so any input of at least 1 px builds (32, 64, 128 px ...); the
    flatten size is ``ceil(h / 32) * ceil(w / 32) * 256``. Call through ``build_model``.
    """
    rate = check_rate("dropout", dropout)
    inputs = image_input(input_shape)
    x = inputs
    for index, filters in enumerate(COVID_FILTERS, start=1):
        x = _block(x, index, filters, 3, pool=True, rate=rate)
    x = _block(x, len(COVID_FILTERS) + 1, COVID_LAST_FILTERS, 1, pool=False, rate=rate)
    x = layers.Flatten(name=HEAD_START)(x)
    x = layers.Dense(512, activation="relu", name="fc1")(x)
    x = layers.Dense(256, activation="relu", name="fc2")(x)
    return keras.Model(inputs, output_layer(x, num_classes, head), name="covid")
