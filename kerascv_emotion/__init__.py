"""kerascv_emotion: Keras 3 CNNs for facial affect and chest X-rays, with per-class metrics,
albumentations augmentation, reports and a Snakemake workflow.

Heavy modules (TensorFlow/Keras) are imported lazily by the submodules that need them, so
``import kerascv_emotion`` and the data/reporting commands stay fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["EmotionRecognizer", "__version__"]

_LAZY = {"EmotionRecognizer": "kerascv_emotion.recognizer"}
"""Public names imported on first use (their modules import PIL/OpenCV, and Keras when used)."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerascv_emotion' has no attribute {name!r}")
