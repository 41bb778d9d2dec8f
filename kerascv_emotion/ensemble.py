"""Ensembles as runs: one plain Keras model that averages the probabilities of several finished
runs (``kerascv-emotion ensemble``), written as a run folder that ``evaluate``, ``report``,
``compare``, ``predict``, ``export`` and ``distill`` take like any other.

The ensemble's input is that of its largest member (side, then channels); each member sees it
resized (``keras.layers.Resizing``, bilinear) to its own side and, where its channels differ,
converted (grey -> RGB by repeating the channel; RGB -> grey by Pillow's ``L`` weights in a frozen
1x1 convolution). The output is the weighted mean of the members' outputs (``Rescaling`` then
``Add``): built-in layers only, so the file loads in Keras's safe mode and exports like any run.
Members must share the task and the class names. ``config.json`` lists the members
(:data:`kerascv_emotion.runs.MEMBERS_KEY`) instead of training settings; there is no ``history.csv``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kerascv_emotion import runs
from kerascv_emotion.errors import ConfigError

ARCH = "ensemble"
"""``config["arch"]`` of an ensemble run."""
LUMA = (0.299, 0.587, 0.114)
"""RGB -> grey weights (ITU-R 601-2, as Pillow's ``convert("L")``, which the image cache uses)."""
_SHARED = ("task", "output_names")


def member_configs(run_dirs: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """The ``config.json`` of each finished run, checked to share task and class names with the
    first: a :class:`ConfigError` naming the first member that differs."""
    if len(run_dirs) < 2:
        raise ConfigError(f"an ensemble needs at least 2 runs, got {len(run_dirs)}")
    configs = [runs.read_config(path) for path in run_dirs]
    first = configs[0]
    for path, config in zip(run_dirs[1:], configs[1:], strict=True):
        for key in _SHARED:
            if config.get(key) != first.get(key):
                raise ConfigError(f"{path}: {key} {config.get(key)} differs from {run_dirs[0]}'s {first.get(key)}; "
                                  "an ensemble's members must share task and class names")
    return configs


def normalised_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """``weights`` (default equal) scaled to sum to 1; one per member, none negative."""
    weights = [1.0] * count if weights is None else [float(w) for w in weights]
    if len(weights) != count:
        raise ConfigError(f"--weights has {len(weights)} value(s) for {count} members; give one per member")
    if min(weights) < 0 or not sum(weights) > 0:
        raise ConfigError(f"--weights {weights}: give values >= 0 with a positive sum")
    return [w / sum(weights) for w in weights]


def adapt_input(inputs: Any, shape: Sequence[int], name: str) -> Any:
    """``inputs`` (a symbolic ``(N, H, W, C)`` tensor) resized and converted to ``shape``
    ``(h, w, c)``; layers are named ``<name>_resize`` / ``<name>_grey`` / ``<name>_rgb``."""
    import keras
    import numpy as np

    x = inputs
    if tuple(x.shape[1:3]) != tuple(shape[:2]):
        x = keras.layers.Resizing(int(shape[0]), int(shape[1]), interpolation="bilinear", name=f"{name}_resize")(x)
    have, want = int(x.shape[-1]), int(shape[2])
    if (have, want) == (3, 1):
        grey = keras.layers.Conv2D(1, 1, use_bias=False, trainable=False, name=f"{name}_grey")
        x = grey(x)
        grey.set_weights([np.array(LUMA, dtype="float32").reshape(1, 1, 3, 1)])
    elif (have, want) == (1, 3):
        x = keras.layers.Concatenate(name=f"{name}_rgb")([x, x, x])
    elif have != want:
        raise ConfigError(f"cannot feed {have}-channel images to a {want}-channel model")
    return x


def build_ensemble(members: Sequence[Any], weights: Sequence[float], names: Sequence[str]) -> Any:
    """One functional model: the input of the largest member, each member fed through
    :func:`adapt_input`, outputs averaged with ``weights`` (summing to 1). ``names`` (unique)
    become the members' model names inside the ensemble."""
    import keras

    shape = max((tuple(m.input_shape[1:]) for m in members), key=lambda s: (s[0] * s[1], s[2]))
    inputs = keras.Input(shape=shape, dtype="float32", name="image")
    parts = []
    for member, weight, name in zip(members, weights, names, strict=True):
        member.name = name
        out = member(adapt_input(inputs, member.input_shape[1:], name))
        parts.append(keras.layers.Rescaling(weight, name=f"{name}_weight")(out))
    return keras.Model(inputs, keras.layers.Add(name="predictions")(parts), name=ARCH)


def ensemble(run_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
             weights: Sequence[float] | None = None) -> Path:
    """Write the ensemble of the finished runs ``run_dirs`` (weighted by ``weights``, default
    equal) into the run folder ``out_dir``; returns it. Index, cache and image settings are
    the first member's (``evaluate --index`` takes another). The members' raw probabilities are
    averaged; a classification ensemble then gets its own temperature (``calibration.json``)."""
    from kerascv_emotion.devices import library_versions

    paths = [Path(p).resolve() for p in run_dirs]
    configs = member_configs(paths)
    weights = normalised_weights(weights, len(paths))
    names = [f"member{i}_{config.get('arch', 'model').replace(':', '_')}" for i, config in enumerate(configs)]
    model = build_ensemble([runs.load_model(path / runs.MODEL) for path in paths], weights, names)
    _, size, _, channels = model.input_shape
    first = configs[0]
    config = {
        "arch": ARCH, **{key: first.get(key) for key in (*_SHARED, "class_names", "index", "cache_dir",
                                                          "on_bad_image", "max_pixels")},
        "image_size": int(size), "channels": int(channels), "params": int(model.count_params()),
        runs.MEMBERS_KEY: [{"run": str(path), "arch": c.get("arch"), "image_size": c["image_size"],
                       "channels": c["channels"], "weight": w} for path, c, w in zip(paths, configs, weights, strict=True)],
        "versions": library_versions(),
    }
    if first.get("task", "classification") == "classification":
        from kerascv_emotion.priors import CLASS_MIX_KEY, members_class_mix

        config[CLASS_MIX_KEY] = members_class_mix(paths)
    run_dir = Path(out_dir)
    with runs.claim(run_dir, {runs.MEMBERS_KEY: config[runs.MEMBERS_KEY]}, restart=True) as work:
        runs.finish_untrained(run_dir, work, config, first["output_names"], model.save)
    if first.get("task", "classification") == "classification":
        from kerascv_emotion.temperature import calibrate_run

        calibrate_run(run_dir)  # the ensemble is calibrated as a whole, on the first member's val split
    return run_dir
