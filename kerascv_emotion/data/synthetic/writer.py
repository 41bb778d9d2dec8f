"""The writer both synthetic generators share: checks the settings, gives every image its own
seeded random stream, saves the PNGs atomically and writes ``index.csv`` (+ sidecar) last."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from kerascv_emotion.data.index import (
    DatasetIndex,
    IndexRecord,
    assign_splits,
    check_fractions,
    meta_path,
)
from kerascv_emotion.errors import ConfigError
from kerascv_emotion.io import atomic_path

_MIN_SIZE = 16

# the defaults of both generators (and of `kerascv-emotion synth`)
PER_CLASS = 100
SIZE = 64
SEED = 0
VAL_FRACTION = 0.15
TEST_FRACTION = 0.15
_STREAM = {"faces": 0, "xrays": 1}


def check_settings(per_class: int, size: int, val_fraction: float, test_fraction: float) -> None:
    """Raise :class:`ConfigError` unless ``per_class`` >= 1, ``size`` >= ``_MIN_SIZE`` px and the
    split fractions are each in [0, 1) with a sum below 1."""
    if per_class < 1:
        raise ConfigError(f"per_class={per_class}: generate at least 1 image per class")
    if size < _MIN_SIZE:
        raise ConfigError(f"size={size}: synthetic images need at least {_MIN_SIZE} px")
    check_fractions(val_fraction, test_fraction, ConfigError)


def write_dataset(
    out_dir: str | os.PathLike,
    stream: str,
    class_names: Sequence[str],
    class_ids: Sequence[int],
    per_class: int,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    render: Callable[[str, np.random.Generator], tuple[Image.Image, float | None, float | None]],
    source: str,
    size: int,
) -> DatasetIndex:
    """Render and save every image (atomically), then write ``out_dir/index.csv`` last."""
    out = Path(out_dir)
    index_csv = out / "index.csv"
    for stale in (index_csv, meta_path(index_csv)):  # no index may outlive a half-rewritten folder
        stale.unlink(missing_ok=True)
    drafts: list[tuple[str, str, float | None, float | None]] = []
    for name, class_id in zip(class_names, class_ids, strict=True):
        (out / name).mkdir(parents=True, exist_ok=True)
        for number in range(1, per_class + 1):
            rng = np.random.default_rng([seed, _STREAM[stream], class_id, number])
            image, valence, arousal = render(name, rng)
            rel = f"{name}/{name}_{number:05d}.png"
            with atomic_path(out / rel) as tmp:
                image.save(tmp, format="PNG")
            drafts.append((rel, name, valence, arousal))
    splits = assign_splits([d[1] for d in drafts], val_fraction, test_fraction, seed)
    records = [
        IndexRecord(path=rel, split=split, label=label,
                    valence=None if v is None else round(v, 6), arousal=None if a is None else round(a, 6))
        for (rel, label, v, a), split in zip(drafts, splits, strict=True)
    ]
    meta = {"source": source, "seed": seed, "size": size, "per_class": per_class,
            "val_fraction": val_fraction, "test_fraction": test_fraction}
    index = DatasetIndex(out.resolve(), list(class_names), records, meta)
    index.write(index_csv)
    return index
