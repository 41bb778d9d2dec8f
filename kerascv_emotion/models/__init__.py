"""CNN models: Hewitt & Gunes (2018) ``alexnet``, ``vgg``, ``mobilenet``; Reshi et al. (2021)
``covid``; and ``keras:<Name>`` backbones from ``keras.applications``.

Every model takes float32 images in [0, 1], ends in a layer named ``"predictions"`` and has a
head starting at the layer named ``"head_start"`` (see ``blocks.py``).
"""

from __future__ import annotations

from kerascv_emotion.model_catalog import (
    APPLICATIONS,
    KERAS_PREFIX,
    available_models,
    check_model_options,
)
from kerascv_emotion.models import alexnet, covid, mobilenet, vgg  # noqa: F401  (registration)
from kerascv_emotion.models.blocks import HEAD_START, INPUT_NAME, PREDICTIONS
from kerascv_emotion.models.registry import (
    backbone_blocks,
    build_model,
    head_start_layer,
    register_model,
    replace_predictions,
)

__all__ = [
    "APPLICATIONS",
    "HEAD_START",
    "INPUT_NAME",
    "KERAS_PREFIX",
    "PREDICTIONS",
    "available_models",
    "backbone_blocks",
    "build_model",
    "check_model_options",
    "head_start_layer",
    "register_model",
    "replace_predictions",
]
