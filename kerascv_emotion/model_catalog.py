"""The model names ``--arch`` accepts and each builder's option names, without TensorFlow.

The one home of these facts, so that a caller that builds nothing (the Snakemake workflow
checking a config at parse time) need not import Keras: ``models.registry`` checks every
built-in builder's signature against :data:`MODEL_OPTIONS` when it registers it, and
``models.applications`` builds the ``keras:<Name>`` models of :data:`APPLICATIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kerascv_emotion.errors import ConfigError

KERAS_PREFIX = "keras:"

MODEL_OPTIONS: dict[str, tuple[str, ...]] = {
    "alexnet": ("dropout", "pool_dropout_rate"),
    "covid": ("dropout",),
    "mobilenet": ("alpha", "dropout"),
    "vgg": ("dropout", "pool_dropout_rate"),
}
"""Built-in models -> the options (keyword arguments after ``input_shape, num_classes, head``)
of their builders; ``register_model`` adds a model registered at run time."""

APPLICATION_OPTIONS = ("weights", "dropout")
"""The options of every ``keras:<Name>`` model (``build_application``'s keyword arguments)."""


@dataclass(frozen=True)
class Application:
    """How to build one ``keras.applications`` family.

    ``preprocessing``: ``"tf"`` ([-1, 1]), ``"caffe"`` (BGR, 0-255 minus the ImageNet mean),
    ``"torch"`` (ImageNet mean/std) or ``"raw255"`` (the application rescales 0-255 inputs
    itself). ``blocks``: regular expressions whose one group gives a layer's block key; a layer
    that matches none belongs to the block of the layer before it.
    """

    preprocessing: str
    blocks: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)
    efficientnet_v1: bool = False


_MOBILENET_V3 = Application(
    "tf",
    (r"^(conv)(?:_bn)?$", r"^(expanded_conv(?:_\d+)?)_", r"^(conv_1)(?:_bn)?$"),
    {"include_preprocessing": False},
)
_EFFICIENTNET_BLOCKS = (r"^(stem)_", r"^(block\d+[a-z])_", r"^(top)_")
_EFFICIENTNET = Application("raw255", _EFFICIENTNET_BLOCKS, efficientnet_v1=True)
_EFFICIENTNET_V2 = Application("raw255", _EFFICIENTNET_BLOCKS, {"include_preprocessing": True})
_RESNET = Application("caffe", (r"^(conv1)_", r"^(conv\d+_block\d+)_"))
_RESNET_V2 = Application("tf", (r"^(conv1)_", r"^(conv\d+_block\d+)_", r"^(post)_"))
_DENSENET = Application(
    "torch", (r"^(conv1)_", r"^(conv\d+_block\d+)_", r"^(pool\d+)_", r"^(bn)$")
)
_VGG = Application("caffe", (r"^(block\d+)_",))

APPLICATIONS: dict[str, Application] = {
    "MobileNet": Application("tf", (r"^(conv1)", r"^conv_(?:dw|pw|pad)_(\d+)")),
    "MobileNetV2": Application(
        "tf", (r"^(?:bn_)?(Conv1)", r"^(expanded_conv)_", r"^(block_\d+)_", r"^(Conv_1)")
    ),
    "MobileNetV3Small": _MOBILENET_V3,
    "MobileNetV3Large": _MOBILENET_V3,
    **{f"EfficientNetB{i}": _EFFICIENTNET for i in range(8)},
    **{f"EfficientNetV2{v}": _EFFICIENTNET_V2 for v in ("B0", "B1", "B2", "B3", "S", "M", "L")},
    "VGG16": _VGG,
    "VGG19": _VGG,
    "ResNet50": _RESNET,
    "ResNet101": _RESNET,
    "ResNet152": _RESNET,
    "ResNet50V2": _RESNET_V2,
    "ResNet101V2": _RESNET_V2,
    "ResNet152V2": _RESNET_V2,
    "DenseNet121": _DENSENET,
    "DenseNet169": _DENSENET,
    "DenseNet201": _DENSENET,
    "Xception": Application("tf", (r"^(block\d+)_",)),
}
"""Supported ``keras:<Name>`` applications (each a ``keras.applications`` function)."""


def application_name(name: str) -> str | None:
    """``"MobileNetV2"`` for ``"keras:MobileNetV2"``; ``None`` for any other name."""
    if name.startswith(KERAS_PREFIX) and name[len(KERAS_PREFIX):] in APPLICATIONS:
        return name[len(KERAS_PREFIX):]
    return None


def available_models() -> list[str]:
    """Built-in model names (sorted), then the supported ``keras:<Name>`` applications."""
    return sorted(MODEL_OPTIONS) + [f"{KERAS_PREFIX}{name}" for name in APPLICATIONS]


def model_options(name: str) -> list[str]:
    """The options (keyword arguments) the builder of model ``name`` accepts; ConfigError
    (listing the choices) for an unknown model."""
    if application_name(name) is not None:
        return list(APPLICATION_OPTIONS)
    if name in MODEL_OPTIONS:
        return list(MODEL_OPTIONS[name])
    raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(available_models())}")


def check_model_options(name: str, options: Mapping[str, Any]) -> None:
    """Raise ConfigError for an unknown model ``name`` or an option its builder lacks, without
    building anything (the values are checked by the builder)."""
    parameters = model_options(name)
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; its options are: "
            f"{', '.join(parameters)}"
        )
