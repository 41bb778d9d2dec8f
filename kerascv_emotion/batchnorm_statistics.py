"""Precise BatchNormalization statistics: recompute moving mean and variance from training images.

Why: a BatchNormalization layer keeps an exponential moving average of its batch statistics
*as seen in training mode*. Where dropout (Dropout, GaussianDropout) feeds a BN layer, and
after only a few hundred steps, that average does not describe what the network computes in
inference mode (dropout off, earlier BN layers normalising with their own moving statistics),
so inference-mode predictions drift or collapse onto one class although the weights are fine.

:func:`recompute_batchnorm_statistics` runs the images through the model once, in inference
mode, with every *trainable* BN layer replaced for that one call by a step that first sets
its moving mean and (biased) variance to the exact statistics of its whole input, then
normalises with them. The images travel as one tensor, so each layer sees the inputs that
its already-updated predecessors produce: the result is the layer-by-layer recomputation in
a single forward pass. Frozen BN layers (``trainable=False``, e.g. while fine-tuning) are
left untouched, and no weight other than the moving statistics changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from kerascv_emotion.errors import ConfigError

if TYPE_CHECKING:  # keras (and TensorFlow) load only when the statistics are computed
    import keras

DEFAULT_IMAGES = 512
"""Training images the statistics are computed from by default (see benchmarks/README.md)."""


def nested_layers(model: keras.Layer) -> Iterator[keras.Layer]:
    """Every layer of ``model`` in order, the layers of nested models included (depth first)."""
    for layer in getattr(model, "layers", []):
        yield layer
        yield from nested_layers(layer)


def trainable_batchnorm_layers(model: keras.Layer) -> list[keras.layers.BatchNormalization]:
    """The BatchNormalization layers of ``model`` whose statistics training would update."""
    import keras

    return [layer for layer in nested_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def _exact_statistics_call(layer: keras.layers.BatchNormalization) -> Any:
    """A replacement for ``layer.call`` that sets the moving statistics from its input first."""
    import keras

    original = layer.call
    reduction_axes = None

    def call(inputs: Any, training: Any = None, mask: Any = None) -> Any:
        nonlocal reduction_axes
        values = keras.ops.cast(inputs, "float32")
        if reduction_axes is None:
            axis = layer.axis % len(values.shape)
            reduction_axes = [i for i in range(len(values.shape)) if i != axis]
        mean, variance = keras.ops.moments(values, axes=reduction_axes)
        layer.moving_mean.assign(keras.ops.cast(mean, layer.moving_mean.dtype))
        layer.moving_variance.assign(keras.ops.cast(variance, layer.moving_variance.dtype))
        return original(inputs, training=False, mask=mask)

    return call


def recompute_batchnorm_statistics(model: keras.Model, images: np.ndarray) -> int:
    """Set every trainable BN layer's moving mean/variance to the statistics of ``images``.

    Args:
        model: a built Keras model (built-in, ``keras.applications``, or loaded from ``.keras``).
        images: float32 ``(N, H, W, C)`` model inputs (for this library: [0, 1] pixels, with the
            training augmentation applied), N >= 2. Memory: one forward pass of all N at once.

    Returns:
        The number of BN layers updated (0 when none is trainable; the model is then untouched).
    """
    layers = trainable_batchnorm_layers(model)
    if not layers:
        return 0
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or len(images) < 2:
        raise ConfigError(f"precise BatchNorm statistics need a (N, H, W, C) array with N >= 2, "
                          f"got shape {images.shape}")
    for layer in layers:
        layer.call = _exact_statistics_call(layer)
    try:
        model(images, training=False)
    finally:
        for layer in layers:
            del layer.call  # back to the class's own call
    return len(layers)
