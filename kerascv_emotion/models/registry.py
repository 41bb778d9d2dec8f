"""Model registry (``build_model``, ``available_models``, ``register_model``) and the helpers
that find a built model's head and backbone blocks by layer name (see ``blocks.py`` for the
naming convention), so that they also work on a model loaded from a ``.keras`` file.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any

import keras

from kerascv_emotion.errors import ConfigError
from kerascv_emotion.model_catalog import (
    APPLICATIONS,
    KERAS_PREFIX,
    MODEL_OPTIONS,
    application_name,
    check_model_options,
    model_options,
)
from kerascv_emotion.models.applications import block_patterns, build_application
from kerascv_emotion.models.blocks import (
    HEAD_START,
    PREDICTIONS,
    check_head,
    check_input_shape,
    output_layer,
)

ModelBuilder = Callable[..., keras.Model]
"""``builder(input_shape, num_classes, head, **options) -> keras.Model``."""

BUILTIN_BLOCK_PATTERNS = (r"^(stem|block\d+)_",)
"""Block regexes of the built-in models: layers ``stem_*`` and ``block<N>_*``."""

_BUILDERS: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator registering ``builder(input_shape, num_classes, head, **options)`` as ``name``.

    The builder must follow the naming convention of ``blocks.py`` and name its model ``name``.
    A built-in's options must be those ``model_catalog.MODEL_OPTIONS`` lists for it (checked
    here, so the catalog cannot drift from the builders); another model's options are added
    to the catalog.
    """
    if name.startswith(KERAS_PREFIX) or name in _BUILDERS:
        raise ValueError(f"model name {name!r} is reserved or already registered")

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        options = tuple(list(inspect.signature(builder).parameters)[3:])
        listed = MODEL_OPTIONS.setdefault(name, options)
        if options != listed:
            raise ValueError(
                f"model {name!r}: the builder's options {options} are not the ones "
                f"kerascv_emotion.model_catalog.MODEL_OPTIONS lists {listed}"
            )
        _BUILDERS[name] = builder
        return builder

    return decorator


def build_model(
    name: str,
    input_shape: Sequence[int] = (128, 128, 3),
    num_classes: int = 8,
    head: str = "classification",
    **kwargs: Any,
) -> keras.Model:
    """Build an uncompiled model taking float32 images ``(batch, *input_shape)`` in [0, 1].

    ``name``: a built-in (``alexnet``, ``vgg``, ``mobilenet``, ``covid``) or ``keras:<Name>``
    (a ``keras.applications`` backbone; options ``weights=None | "/local/file.h5"`` and
    ``dropout``); see :func:`available_models`. ``kwargs`` are the family's options
    (``alexnet``/``vgg``: ``dropout=0.5``, ``pool_dropout_rate=0.2``; ``mobilenet``:
    ``alpha=1.0``, ``dropout=0.3``; ``covid``: ``dropout=0.2``).

    Output layer ``"predictions"`` (float32), by ``head``:

    - ``"classification"`` with ``num_classes >= 2``: ``(batch, num_classes)`` softmax. A 2-class
      task gets a 2-unit softmax, so categorical cross-entropy, per-class metrics and ROC work
      unchanged;
    - ``"classification"`` with ``num_classes == 1``: ``(batch, 1)`` sigmoid (binary);
    - ``"regression"``: ``(batch, 2)`` linear (valence, arousal); ``num_classes`` is ignored.

    Raises :class:`ConfigError` for an unknown name, a bad shape/head or an unknown option.
    """
    shape = check_input_shape(input_shape)
    check_head(head, num_classes)
    check_model_options(name, kwargs)
    return _builder(name)(shape, num_classes, head, **kwargs)


def _builder(name: str) -> ModelBuilder:
    """The builder of ``name``; ConfigError (listing the choices) for an unknown one."""
    model_options(name)  # ConfigError for a name the catalog lacks
    application = application_name(name)
    if application is not None:
        return functools.partial(build_application, application)
    return _BUILDERS[name]


def _layer_index(model: keras.Model, layer_name: str) -> int:
    """Position of ``layer_name`` in ``model.layers`` (topological order)."""
    for index, layer in enumerate(model.layers):
        if layer.name == layer_name:
            return index
    raise ConfigError(
        f"model {model.name!r} has no layer {layer_name!r}: it was not built by "
        "kerascv_emotion.models.build_model; rebuild it with build_model"
    )


def head_start_layer(model: keras.Model) -> str:
    """Name of the layer where the head starts (:data:`HEAD_START`: the Flatten or
    GlobalAveragePooling2D after the last conv block); the head is it and every later layer."""
    _layer_index(model, HEAD_START)
    return HEAD_START


def _block_key(name: str, patterns: Sequence[re.Pattern[str]]) -> str | None:
    for pattern in patterns:
        match = pattern.match(name)
        if match:
            return match.group(1)
    return None


def _patterns_for(model: keras.Model, names: Sequence[str]) -> list[re.Pattern[str]]:
    """Block regexes by model name; for a renamed model, the family matching most layer names."""
    if model.name in _BUILDERS:
        return [re.compile(p) for p in BUILTIN_BLOCK_PATTERNS]
    known = block_patterns(model.name)
    if known is not None:
        return [re.compile(p) for p in known]
    candidates = [BUILTIN_BLOCK_PATTERNS] + [app.blocks for app in APPLICATIONS.values()]
    compiled = [[re.compile(p) for p in group] for group in candidates]
    return max(compiled, key=lambda group: sum(_block_key(n, group) is not None for n in names))


def backbone_blocks(model: keras.Model) -> list[list[str]]:
    """Layer names of each backbone block, in order from input to head (the last entries are
    the blocks nearest the head; "unfreeze the last K blocks" = ``blocks[-K:]``).

    Built-in models: ``stem`` (mobilenet) and ``block1``, ``block2``, ...; ``keras:`` models:
    the application's own blocks (e.g. ``block_1`` ... ``block_16`` for MobileNetV2, ``block1a``
    ... for EfficientNet, plus their stem and top conv). Input and preprocessing layers belong
    to no block; a layer without a block name (auto-named activations, adds) joins the block
    of the layer before it.
    """
    names = [layer.name for layer in model.layers[: _layer_index(model, HEAD_START)]]
    patterns = _patterns_for(model, names)
    blocks: dict[str, list[str]] = {}
    key: str | None = None
    for name in names:
        key = _block_key(name, patterns) or key
        if key is not None:
            blocks.setdefault(key, []).append(name)
    if not blocks:
        raise ConfigError(f"model {model.name!r}: no layer is named like a conv block")
    return list(blocks.values())


def replace_predictions(
    model: keras.Model, num_classes: int, head: str = "classification"
) -> keras.Model:
    """A new model sharing every layer of ``model`` except ``"predictions"``, which is replaced by
    a freshly initialised output layer for ``num_classes``/``head`` (same rules as
    :func:`build_model`), e.g. to fine-tune a trained model on another label set."""
    check_head(head, num_classes)
    features = model.layers[_layer_index(model, PREDICTIONS)].input
    # model.input keeps the structure the model was built with (one tensor): model.inputs, a list,
    # would make every call with one tensor warn that the structure of `inputs` does not match
    return keras.Model(model.input, output_layer(features, num_classes, head), name=model.name)
