"""Grad-CAM heat maps (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks
via Gradient-based Localization"): where in an image a classification run looks for a class.

The map of class ``c`` is ``ReLU(sum_k a_k A_k)`` over the channels ``A_k`` of the target layer's
output, weighted by ``a_k``, the spatial mean of ``d z_c / d A_k``; ``z_c`` is the class's
pre-softmax score (the ``predictions`` layer's kernel and bias applied to its input). The target
layer is by default the last 4-D layer before the head (:data:`~kerascv_emotion.models.HEAD_START`)
that is no pooling, dropout or noise layer and whose map is at least :data:`MIN_SIDE` cells on
each side (else the last one): at 224 px the last convolution block's activation (7x7) of the
``keras:`` applications and the COVID network; at FER2013's 48 px, where the last blocks of the
paper networks are 3x3 or 2x2 (a map that colours the whole face alike), the last block at 6x6.
``layer`` picks another. Maps are scaled to 0..1 per image (all 0 where no location raises the
score) and resized to the input.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from kerascv_emotion.errors import ConfigError

log = logging.getLogger(__name__)

ALPHA = 0.45
"""Opacity of a heat map drawn over its image."""
COLORMAP = "jet"
MIN_SIDE = 6
"""Smallest side (in cells) of the default target layer's feature map."""
_SKIPPED_TYPES = ("InputLayer", "Pooling", "Padding", "Dropout", "Noise")  # class names: no features of their own


def target_layer(model: Any, min_side: int = MIN_SIDE) -> str:
    """The default Grad-CAM layer of ``model`` (see the module docstring)."""
    from kerascv_emotion.models import HEAD_START

    names = [layer.name for layer in model.layers]
    last = names.index(HEAD_START) if HEAD_START in names else len(names)
    candidates = [layer for layer in model.layers[:last] if len(layer.output.shape) == 4
                  and not any(word in type(layer).__name__ for word in _SKIPPED_TYPES)]
    if not candidates:
        raise ConfigError(f"model {model.name} has no convolutional feature map for Grad-CAM")
    fine = [layer for layer in candidates if min(layer.output.shape[1:3]) >= min_side]
    return (fine or candidates)[-1].name


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
        names = [layer.name for layer in model.layers]
        if PREDICTIONS not in names:
            raise ConfigError(f"model {model.name} has no {PREDICTIONS!r} layer; Grad-CAM needs this library's head")
        head = model.get_layer(PREDICTIONS)
        if not isinstance(head, keras.layers.Dense):
            raise ConfigError(f"model {model.name}'s {PREDICTIONS!r} layer is a {type(head).__name__}, not this "
                              "library's Dense head (an ensemble?); explain one of its member runs instead")
        self._kernel, self._bias = head.kernel, head.bias
        self._model = keras.Model(model.inputs, [features, head.input])
        self.class_names = list(class_names)
        self.image_size, self.channels = int(image_size), int(channels)

    @classmethod
    def for_run(cls, run_dir: str | os.PathLike, layer: str | None = None) -> GradCam:
        """Grad-CAM of ``RUN/model.keras`` (a classification run)."""
        from kerascv_emotion.runs import load_run

        config, model = load_run(run_dir)
        if config.get("task", "classification") != "classification":
            raise ConfigError(f"{run_dir} is a {config['task']} run; Grad-CAM explains classification runs")
        return cls(model, layer, config["class_names"], config["image_size"], config["channels"])

    def __call__(self, images: np.ndarray, class_ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Heat maps float32 ``(N, H, W)`` in 0..1 of uint8 (or 0..1 float) ``images``
        ``(N, H, W, C)`` for ``class_ids`` ``(N,)`` (default: each image's predicted class),
        and the class ids used ``(N,)``."""
        import tensorflow as tf

        from kerascv_emotion.inference import to_input

        uint8 = np.asarray(images).dtype == np.uint8
        x = tf.convert_to_tensor(to_input(images) if uint8 else np.asarray(images, dtype=np.float32))
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


GALLERY_PER_CLASS = 3
"""Images per predicted class and kind (right, wrong) in ``gallery.npz``."""
GALLERY_CELLS, GALLERY_PER_CELL = 3, 4
"""The largest off-diagonal confusion-matrix cells in ``gallery.npz``, and images per cell."""
_BATCH = 16


def select_gallery(y_true: np.ndarray, y_prob: np.ndarray, per_class: int = GALLERY_PER_CLASS,
                   cells: int = GALLERY_CELLS, per_cell: int = GALLERY_PER_CELL) -> tuple[np.ndarray, np.ndarray]:
    """Sample ids ``(M,)`` and their kind ``(M,)`` (``"correct"``, ``"wrong"``, ``"confusion"``) of
    labels ``(N,)`` and probabilities ``(N, K)``: for each predicted class its ``per_class`` most
    confident right and wrong predictions, then for each of the ``cells`` largest off-diagonal
    confusion-matrix cells (true, predicted) its ``per_cell`` most confident images."""
    y_true = np.asarray(y_true)
    pred, confidence = np.argmax(y_prob, axis=1), np.max(y_prob, axis=1)
    order = np.argsort(-confidence, kind="stable")
    ids: list[np.ndarray] = []
    kinds: list[str] = []
    for c in range(y_prob.shape[1]):
        said = order[pred[order] == c]
        for kind, picked in (("correct", said[y_true[said] == c]), ("wrong", said[y_true[said] != c])):
            ids.append(picked[:per_class])
            kinds += [kind] * len(ids[-1])
    k = y_prob.shape[1]
    counts = np.bincount(y_true * k + pred, minlength=k * k).reshape(k, k)
    np.fill_diagonal(counts, 0)
    for cell in np.argsort(-counts, axis=None, kind="stable")[:cells]:
        t, p = divmod(int(cell), k)
        if counts[t, p]:
            ids.append(order[(y_true[order] == t) & (pred[order] == p)][:per_cell])
            kinds += ["confusion"] * len(ids[-1])
    return np.concatenate(ids).astype(np.int64), np.array(kinds, dtype=str)


def write_gallery(path: str | os.PathLike, model: Any, images: np.ndarray, y_true: np.ndarray,
                  y_prob: np.ndarray) -> None:
    """Write ``gallery.npz`` for the report: the :func:`select_gallery` images of uint8 ``images``
    ``(N, H, W, C)`` with labels ``(N,)`` and probabilities ``(N, K)``; arrays ``index``, ``kind``,
    ``y_true``, ``y_pred``, ``confidence`` ``(M,)``, ``images`` uint8 ``(M, H, W, C)`` and ``heat``
    float16 ``(M, H, W)`` (Grad-CAM of the predicted class, 0..1). A model Grad-CAM cannot explain
    gets a warning and no file."""
    from kerascv_emotion.io import atomic_path

    try:
        cam = GradCam(model)
    except ConfigError as exc:  # the evaluation stands without its gallery
        log.warning("no Grad-CAM gallery: %s", exc)
        return
    ids, kinds = select_gallery(y_true, y_prob)
    pred = np.argmax(y_prob, axis=1)
    heat = [cam(images[ids[i:i + _BATCH]], pred[ids[i:i + _BATCH]])[0] for i in range(0, len(ids), _BATCH)]
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, index=ids, kind=kinds, y_true=np.asarray(y_true)[ids], y_pred=pred[ids],
                            confidence=np.max(y_prob, axis=1)[ids], images=np.asarray(images)[ids],
                            heat=np.concatenate(heat).astype(np.float16) if heat else np.zeros((0,), np.float16))
