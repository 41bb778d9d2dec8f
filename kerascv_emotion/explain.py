"""Grad-CAM heat maps (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks
via Gradient-based Localization"): where in an image a classification run looks for a class.

The map of class ``c`` is ``ReLU(sum_k a_k A_k)`` over the channels ``A_k`` of the target layer's
output, weighted by ``a_k``, the spatial mean of ``d z_c / d A_k``; ``z_c`` is the class's
pre-softmax score (the ``predictions`` layer's kernel and bias applied to its input). The target
layer is by default the last 4-D layer before the head (:data:`~kerascv_emotion.models.HEAD_START`)
that is no pooling, dropout or noise layer: for the paper networks and ``keras:`` applications
the last convolution block's activation, for the COVID network its 1x1 block's. Maps are scaled
to 0..1 per image (all 0 where no location raises the score) and resized to the input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from kerascv_emotion.errors import ConfigError

ALPHA = 0.45
"""Opacity of a heat map drawn over its image."""
COLORMAP = "jet"
_SKIPPED_TYPES = ("InputLayer", "Pooling", "Dropout", "Noise")  # layer class names: no features of their own


def target_layer(model: Any) -> str:
    """The default Grad-CAM layer of ``model`` (see the module docstring)."""
    from kerascv_emotion.models import HEAD_START

    names = [layer.name for layer in model.layers]
    last = names.index(HEAD_START) if HEAD_START in names else len(names)
    for layer in reversed(model.layers[:last]):
        if len(layer.output.shape) == 4 and not any(word in type(layer).__name__ for word in _SKIPPED_TYPES):
            return layer.name
    raise ConfigError(f"model {model.name} has no convolutional feature map for Grad-CAM")


class GradCam:
    """Grad-CAM of a classifier whose last layer is the softmax ``predictions`` Dense layer.

    ``layer``: the target layer's name (default :func:`target_layer`). ``image_size``,
    ``channels`` and ``class_names`` describe the run (what :meth:`for_run` reads).
    """

    def __init__(self, model: Any, layer: str | None = None, class_names: Sequence[str] = (),
                 image_size: int = 0, channels: int = 3) -> None:
        import keras

        from kerascv_emotion.models import PREDICTIONS

        self.layer = layer or target_layer(model)
        try:
            features = model.get_layer(self.layer).output
        except ValueError:
            raise ConfigError(f"model {model.name} has no layer {self.layer!r}; "
                              f"give one of its convolutional layers") from None
        head = model.get_layer(PREDICTIONS)
        self._kernel, self._bias = head.kernel, head.bias
        self._model = keras.Model(model.inputs, [features, head.input])
        self.class_names = list(class_names)
        self.image_size, self.channels = int(image_size), int(channels)

    @classmethod
    def for_run(cls, run_dir: str | os.PathLike, layer: str | None = None) -> GradCam:
        """Grad-CAM of ``RUN/model.keras`` (a classification run)."""
        from pathlib import Path

        from kerascv_emotion.runs import MODEL, read_config
        from kerascv_emotion.training import load_model

        config = read_config(run_dir)
        if config.get("task", "classification") != "classification":
            raise ConfigError(f"{run_dir} is a {config['task']} run; Grad-CAM explains classification runs")
        return cls(load_model(Path(run_dir) / MODEL), layer, config["class_names"], config["image_size"],
                   config["channels"])

    def __call__(self, images: np.ndarray, class_ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Heat maps float32 ``(N, H, W)`` in 0..1 of uint8 (or 0..1 float) ``images``
        ``(N, H, W, C)`` for ``class_ids`` ``(N,)`` (default: each image's predicted class),
        and the class ids used ``(N,)``."""
        import tensorflow as tf

        x = np.asarray(images, dtype=np.float32)
        if np.asarray(images).dtype == np.uint8:
            x = x / np.float32(255.0)
        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)  # records every op, frozen layers' included
            features, pooled = self._model(x, training=False)
            logits = tf.matmul(tf.cast(pooled, tf.float32), self._kernel) + self._bias
            ids = tf.argmax(logits, axis=1) if class_ids is None else tf.constant(np.asarray(class_ids))
            score = tf.reduce_sum(tf.gather(logits, ids, axis=1, batch_dims=1))
        grads = tf.cast(tape.gradient(score, features), tf.float32)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * tf.cast(features, tf.float32), axis=-1))[..., None]
        cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[..., 0].numpy()
        peak = cam.max(axis=(1, 2), keepdims=True)
        cam = np.where(peak > 0, cam / np.where(peak > 0, peak, 1.0), 0.0).astype(np.float32)
        return cam, np.asarray(ids, dtype=np.int64)

    def overlay(self, image: Any, path: str, boxes: Sequence[Sequence[int]], labels: Sequence[str]) -> Any:
        """``image`` (PIL, as opened from ``path``) as RGB with the heat map of ``labels[i]`` (class
        names) over ``boxes[i]`` ``(x, y, w, h)``, each box prepared as the run's input is."""
        from kerascv_emotion.data.images import prepare_image

        if not boxes:
            return image.convert("RGB")
        crops = np.stack([prepare_image(image, path, self.image_size, self.channels, tuple(box)) for box in boxes])
        maps, _ = self(crops, [self.class_names.index(label) for label in labels])
        for heat, box in zip(maps, boxes, strict=True):
            image = heat_overlay(image, heat, box)
        return image


def heat_overlay(image: Any, heat: np.ndarray, box: Sequence[int] | None = None, alpha: float = ALPHA) -> Any:
    """``image`` (a PIL image) as RGB with ``heat`` ``(h, w)`` in 0..1, coloured with
    :data:`COLORMAP`, blended at opacity ``alpha`` over ``box`` ``(x, y, w, h)`` (default: all of it)."""
    from matplotlib import colormaps
    from PIL import Image

    out = image.convert("RGB")
    x, y, w, h = box if box is not None else (0, 0, *out.size)
    if w < 1 or h < 1:
        return out
    heat_image = Image.fromarray(np.uint8(np.clip(heat, 0.0, 1.0) * 255)).resize((w, h), Image.BILINEAR)
    colours = np.uint8(colormaps[COLORMAP](np.asarray(heat_image) / 255.0)[..., :3] * 255)
    region = out.crop((x, y, x + w, y + h))
    out.paste(Image.blend(region, Image.fromarray(colours), alpha), (x, y))
    return out
