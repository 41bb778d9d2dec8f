"""Validate and checkpoint with the optimizer's weight EMA (Keras's ``use_ema``), train on the
raw weights."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


class EMAWeights:
    """Two callbacks around validation: :attr:`swap_in` (first in the list) puts the optimizer's
    moving averages of the trainable weights into the model at each epoch's end, so that
    PreciseBatchNorm, PerClassMetrics and the checkpoint see and save the EMA model;
    :attr:`swap_out` (after the checkpoint, before the resume backup) puts the raw weights back
    for the next epoch. Needs an optimizer built with ``use_ema=True``."""

    def __init__(self) -> None:
        self._raw: list[np.ndarray] | None = None
        outer = self

        class SwapIn(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                variables = self.model.trainable_variables
                outer._raw = [np.array(v.numpy()) for v in variables]
                self.model.optimizer.finalize_variable_values(variables)  # EMA -> model (Keras's own)

        class SwapOut(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if outer._raw is not None:
                    for variable, value in zip(self.model.trainable_variables, outer._raw, strict=True):
                        variable.assign(value)
                    outer._raw = None

        self.swap_in = SwapIn()
        self.swap_out = SwapOut()
