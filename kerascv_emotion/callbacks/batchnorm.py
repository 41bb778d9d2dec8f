"""``PreciseBatchNorm``: BatchNormalization statistics that describe inference mode, set
before each validation pass (see :mod:`kerascv_emotion.batchnorm_statistics`)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kerascv_emotion.batchnorm_statistics import DEFAULT_IMAGES, recompute_batchnorm_statistics
from kerascv_emotion.errors import ConfigError


class PreciseBatchNorm(keras.callbacks.Callback):
    """Recompute the moving statistics of every trainable BatchNormalization layer at the end
    of each epoch (:func:`kerascv_emotion.batchnorm_statistics.recompute_batchnorm_statistics`).

    Place it *before* :class:`PerClassMetrics` and ``ModelCheckpoint`` in the callback list, so
    validation and the saved model use statistics that describe inference mode.

    Args:
        train_data: float32 images ``(N, H, W, C)``, or a ``keras.utils.PyDataset`` of
            ``(x, ...)`` training batches (augmented as in training; read from batch 0 on).
        num_images: how many training images the statistics come from (fewer if the data
            hold fewer).
    """

    def __init__(self, train_data: Any, num_images: int = DEFAULT_IMAGES) -> None:
        super().__init__()
        if int(num_images) < 2:
            raise ConfigError(f"PreciseBatchNorm num_images={num_images} must be at least 2")
        if not isinstance(train_data, keras.utils.PyDataset | np.ndarray):
            raise ConfigError("PreciseBatchNorm train_data must be an image array or a keras.utils.PyDataset, "
                              f"not {type(train_data).__name__}")
        self.train_data = train_data
        self.num_images = int(num_images)
        self.layers_updated = 0

    def _images(self) -> np.ndarray:
        if isinstance(self.train_data, np.ndarray):
            return self.train_data[:self.num_images]
        parts, count = [], 0
        for i in range(int(self.train_data.num_batches)):
            x = np.asarray(self.train_data[i][0])
            parts.append(x)
            count += len(x)
            if count >= self.num_images:
                break
        return np.concatenate(parts)[:self.num_images]

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.layers_updated = recompute_batchnorm_statistics(self.model, self._images())


