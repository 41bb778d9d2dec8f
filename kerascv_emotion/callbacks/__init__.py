"""Keras callbacks: :class:`PerClassMetrics` owns validation (per-class metrics every epoch);
:class:`PreciseBatchNorm` sets inference-mode BatchNorm statistics before it;
:class:`AtomicModelCheckpoint`, :class:`AtomicBackupAndRestore` and :class:`EpochSeededNoise`
make a killed run resume to the result an uninterrupted one reaches; :class:`StopOnDivergence`
ends a run whose loss became NaN; :class:`EMAWeights` validates and saves the optimizer's weight EMA."""

from kerascv_emotion.callbacks.batchnorm import PreciseBatchNorm
from kerascv_emotion.callbacks.ema import EMAWeights
from kerascv_emotion.callbacks.per_class import PerClassMetrics, log_names
from kerascv_emotion.callbacks.resumable import (
           AtomicBackupAndRestore,
           AtomicModelCheckpoint,
           EpochSeededNoise,
           StopOnDivergence,
)

__all__ = ["AtomicBackupAndRestore", "AtomicModelCheckpoint", "EMAWeights", "EpochSeededNoise", "PerClassMetrics",
           "PreciseBatchNorm", "StopOnDivergence", "log_names"]
