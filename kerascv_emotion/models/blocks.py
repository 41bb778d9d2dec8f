"""Shared layer builders, argument checks and the layer-naming convention of every model.

Naming convention (the tune step and :func:`kerascv_emotion.models.backbone_blocks` rely on it):

- the input layer is ``"image"``: float32 images of shape ``(height, width, channels)`` in [0, 1];
- built-in backbones name every layer ``stem_*`` or ``block<N>_*`` (``N`` = 1, 2, ... in order);
- the head starts at the Flatten / GlobalAveragePooling2D layer named :data:`HEAD_START`; every
  layer from it (inclusive) to the output is the head;
- the output layer is :data:`PREDICTIONS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import keras
from keras import layers

from kerascv_emotion.errors import ConfigError
from kerascv_emotion.tasks import REGRESSION_NAMES, TASKS

HEAD_START = "head_start"
"""Name of the Flatten/GlobalAveragePooling2D layer where the head begins (the head includes it)."""

PREDICTIONS = "predictions"
"""Name of the output Dense layer."""

INPUT_NAME = "image"
"""Name of the model's input layer."""

BN_MOMENTUM = 0.9
"""BatchNormalization momentum of every built-in model. The papers do not state one; Keras's
default (0.99) leaves the moving statistics near their initial values after the few hundred
steps a small data set gives, so inference-mode predictions collapse onto one class. 0.9 (the
PyTorch default) settles within ~50 steps and changes no parameter count."""

PAPER_DROPOUT = 0.5
"""Hewitt & Gunes' Dropout rate in the dense head of alexnet and vgg."""

PAPER_POOL_DROPOUT = 0.2
"""Hewitt & Gunes' GaussianDropout rate after every pool of alexnet and vgg."""


def _is_int(value: object) -> bool:
    """True for Python/numpy integers, False for bools and everything else."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """Return ``input_shape`` as a ``(height, width, channels)`` tuple of positive ints."""
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(_is_int(v) and v > 0 for v in shape):
        raise ConfigError(
            f"input_shape={input_shape!r}: give (height, width, channels) as three positive ints"
        )
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def check_head(head: str, num_classes: int) -> None:
    """Raise :class:`ConfigError` unless ``head`` is known and ``num_classes`` >= 1."""
    if head not in TASKS:
        raise ConfigError(f"head={head!r}: choose one of {', '.join(TASKS)}")
    if head == "classification" and (not _is_int(num_classes) or num_classes < 1):
        raise ConfigError(f"num_classes={num_classes!r}: give a positive number of classes")


def check_rate(option: str, value: float) -> float:
    """Return a dropout ``value`` after checking 0 <= value < 1 (``option`` names the setting)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= value < 1.0:
        raise ConfigError(f"{option}={value!r}: give a dropout rate in [0, 1)")
    return float(value)


def image_input(input_shape: tuple[int, int, int]) -> keras.KerasTensor:
    """The model input: float32 images ``(batch, height, width, channels)`` scaled to [0, 1]."""
    return keras.Input(shape=input_shape, dtype="float32", name=INPUT_NAME)


def conv_bn_relu(
    x: keras.KerasTensor, filters: int, kernel_size: int, name: str, strides: int = 1
) -> keras.KerasTensor:
    """Conv2D (same padding, no bias) -> BatchNormalization -> ReLU.

    Layers are named ``name``, ``name_bn`` and ``name_relu``.
    """
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False, name=name
    )(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def pool_dropout(x: keras.KerasTensor, block: str, rate: float) -> keras.KerasTensor:
    """2x2 max-pool (stride 2, same padding: halves height and width, rounding up) ->
    GaussianDropout(``rate``); layers ``block_pool`` and ``block_dropout``."""
    x = layers.MaxPooling2D(2, padding="same", name=f"{block}_pool")(x)
    return layers.GaussianDropout(rate, name=f"{block}_dropout")(x)


def dense_bn_relu_dropout(
    x: keras.KerasTensor, units: int, name: str, rate: float
) -> keras.KerasTensor:
    """Dense (no bias) -> BatchNormalization -> ReLU -> Dropout(``rate``).

    Layers are named ``name``, ``name_bn``, ``name_relu`` and ``name_dropout``.
    """
    x = layers.Dense(units, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    return layers.Dropout(rate, name=f"{name}_dropout")(x)


def output_layer(x: keras.KerasTensor, num_classes: int, head: str) -> keras.KerasTensor:
    """The :data:`PREDICTIONS` layer (float32 even under a mixed-precision policy).

    - ``head="regression"``: ``Dense(2, linear)`` giving (valence, arousal); ``num_classes`` is
      ignored;
    - ``head="classification"``, ``num_classes == 1``: ``Dense(1, sigmoid)``, the probability of
      the positive class (binary cross-entropy);
    - ``head="classification"``, ``num_classes >= 2`` (2 included): ``Dense(num_classes,
      softmax)``, so categorical cross-entropy, per-class metrics and ROC work unchanged.
    """
    if head == "regression":
        units, activation = len(REGRESSION_NAMES), "linear"
    elif num_classes == 1:
        units, activation = 1, "sigmoid"
    else:
        units, activation = int(num_classes), "softmax"
    return layers.Dense(units, activation=activation, dtype="float32", name=PREDICTIONS)(x)


def paper_network(input_shape: tuple[int, int, int], blocks: Sequence[Sequence[tuple[int, int]]],
                  num_classes: int, head: str, dropout: float, pool_dropout_rate: float,
                  name: str) -> keras.Model:
    """Hewitt & Gunes' network shape shared by alexnet and vgg.

    Each of ``blocks`` is its convs as ``(filters, kernel size)``: Conv2D same/no bias -> BN ->
    ReLU, named ``block<N>_conv`` (one conv) or ``block<N>_conv<i>``, then a 2x2 max-pool and
    GaussianDropout(``pool_dropout_rate``). The head: Flatten (:data:`HEAD_START`), two dense
    blocks of 1024 (Dense no bias -> BN -> ReLU -> Dropout(``dropout``)), the output layer.
    """
    dropout = check_rate("dropout", dropout)
    pool_rate = check_rate("pool_dropout_rate", pool_dropout_rate)
    inputs = image_input(input_shape)
    x = inputs
    for index, convs in enumerate(blocks, start=1):
        for number, (filters, kernel) in enumerate(convs, start=1):
            suffix = "" if len(convs) == 1 else str(number)
            x = conv_bn_relu(x, filters, kernel, name=f"block{index}_conv{suffix}")
        x = pool_dropout(x, f"block{index}", pool_rate)
    x = layers.Flatten(name=HEAD_START)(x)
    x = dense_bn_relu_dropout(x, 1024, "fc1", dropout)
    x = dense_bn_relu_dropout(x, 1024, "fc2", dropout)
    return keras.Model(inputs, output_layer(x, num_classes, head), name=name)
