"""Running a model on images, for everything that does (``evaluate``, ``predict``, the
temperature fit, ``export``'s check, Grad-CAM, the evaluation's timing): the model's input
(:func:`to_input`: uint8 pixels scaled to float32 0..1, as training feeds the model), batched
prediction with test-time augmentation (:func:`predict_batches`, :func:`tta_views`) and the
check that a model's outputs are finite (:func:`check_finite`). Keras is imported only for
``tta="crops"``; models are loaded by :func:`kerascv_emotion.runs.load_model`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kerascv_emotion.errors import ConfigError, DataError

MAX_PIXEL = np.float32(255.0)
"""The uint8 pixel value that becomes 1.0 in the model's input (the training stream's
``tf.data`` scaling divides by it too)."""
TTA_MODES = ("none", "hflip", "crops")
TTA_CROP_FRACTION = 0.875  # side of each of tta="crops"' five crops, as a fraction of the image's


def to_input(images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """The model input float32 ``(N, H, W, C)`` in 0..1 of uint8 ``images`` (an array
    ``(N, H, W, C)`` or a sequence of ``(H, W, C)`` arrays; one ``(H, W, C)`` image gives
    ``(H, W, C)``)."""
    return np.asarray(images, dtype=np.float32) / MAX_PIXEL


def _tta_mode(tta: str | None) -> str:
    mode = "none" if tta is None else tta
    if mode not in TTA_MODES:
        raise DataError(f"tta={tta!r} is not one of {list(TTA_MODES)}")
    return mode


def tta_views(x: np.ndarray, tta: str | None) -> list[np.ndarray]:
    """The views of a batch ``x`` (float32 ``(B, H, W, C)``) whose outputs ``tta`` averages,
    each of ``x``'s shape: ``None``/``none`` ``[x]``; ``hflip`` ``x`` and its mirror; ``crops`` the
    four corner crops and the centre crop (side :data:`TTA_CROP_FRACTION`) resized back to
    ``(H, W)`` bilinearly, and their mirrors (ten views)."""
    mode = _tta_mode(tta)
    if mode == "none":
        return [x]
    if mode == "hflip":
        return [x, x[:, :, ::-1]]
    import keras

    height, width = x.shape[1:3]
    ch, cw = max(1, round(height * TTA_CROP_FRACTION)), max(1, round(width * TTA_CROP_FRACTION))
    corners = [(0, 0), (0, width - cw), (height - ch, 0), (height - ch, width - cw),
               ((height - ch) // 2, (width - cw) // 2)]
    crops = [np.asarray(keras.ops.image.resize(x[:, top:top + ch, left:left + cw], (height, width),
                                               interpolation="bilinear"), dtype=np.float32)
             for top, left in corners]
    return crops + [crop[:, :, ::-1] for crop in crops]


def check_finite(outputs: np.ndarray, model_file: str | os.PathLike) -> np.ndarray:
    """``outputs`` ``(N, K)`` unchanged, or a one-line :class:`DataError` naming ``model_file``
    when any is NaN or infinite (a model saved from a diverged training)."""
    bad = ~np.isfinite(outputs).all(axis=tuple(range(1, outputs.ndim)))
    if bad.any():
        raise DataError(f"{model_file} gives NaN or infinite outputs for {int(bad.sum())} of {len(outputs)} "
                        "images: the model is broken (diverged); train it again with a lower learning rate")
    return outputs


def predict_batches(model: Any, images: np.ndarray | Sequence[np.ndarray], batch_size: int = 64,
                    tta: str | None = None, source: str | os.PathLike | None = None) -> np.ndarray:
    """The outputs float64 ``(N, K)`` of ``model`` for uint8 ``images`` (``(N, H, W, C)``, or a
    sequence of ``(H, W, C)`` arrays), in order, ``batch_size`` images per call, each batch
    scaled by :func:`to_input`. ``model``: a Keras model (run by ``predict_on_batch``) or any
    function of a float32 batch (an exported file's runner). With ``tta`` (``"hflip"``,
    ``"crops"``) each image's output is the mean of those of its :func:`tta_views`. With
    ``source`` (the model's file) outputs that are not finite are a one-line DataError
    naming it (:func:`check_finite`)."""
    mode = _tta_mode(tta)
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: use 1 or more")
    if len(images) == 0:
        raise DataError(f"no images to predict with {source or 'the model'}")
    run: Callable[[np.ndarray], Any] = getattr(model, "predict_on_batch", model)
    parts = []
    for start in range(0, len(images), batch_size):
        outputs = [np.asarray(run(view), dtype=np.float64)
                   for view in tta_views(to_input(images[start:start + batch_size]), mode)]
        parts.append(outputs[0] if len(outputs) == 1 else np.mean(outputs, axis=0))
    outputs = np.concatenate(parts)
    return outputs if source is None else check_finite(outputs, source)
