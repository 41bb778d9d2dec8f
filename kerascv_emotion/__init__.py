"""kerascv_emotion: Keras 3 CNNs for facial affect and chest X-rays, with per-class metrics,
albumentations augmentation, reports and a Snakemake workflow.

Heavy modules (TensorFlow/Keras) are imported lazily by the submodules that need them, so
``import kerascv_emotion`` and the data/reporting commands stay fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
