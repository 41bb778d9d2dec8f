"""Shared fixtures: tiny synthetic data sets made once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8-class synthetic faces, 32 px, 6 per class (with valence/arousal); returns index.csv."""
    from kerascv_emotion.data.synthetic import generate_faces

    out = tmp_path_factory.mktemp("faces")
    generate_faces(out, per_class=6, size=32, seed=0, val_fraction=0.34, test_fraction=0.34)
    return out / "index.csv"


@pytest.fixture(scope="session")
def tiny_xrays(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2-class synthetic X-rays, 32 px, 6 per class; returns index.csv."""
    from kerascv_emotion.data.synthetic import generate_xrays

    out = tmp_path_factory.mktemp("xrays")
    generate_xrays(out, per_class=6, size=32, seed=0, val_fraction=0.34, test_fraction=0.34)
    return out / "index.csv"


@pytest.fixture(scope="session")
def tiny_run(tiny_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MobileNet (alpha 0.25) trained 3 epochs on ``tiny_faces`` at 32 px; returns the run folder."""
    from kerascv_emotion.training import TrainSettings, train

    settings = TrainSettings(arch="mobilenet", index=str(tiny_faces), image_size=32, epochs=3, batch_size=8,
                             augment=None, precise_bn_images=0, arch_kwargs={"alpha": 0.25})
    return train(settings, tmp_path_factory.mktemp("runs") / "mobilenet", verbose=0)


def tiny_default_config(**top: object) -> dict:
    """``config.yaml`` shrunk for a real workflow run in a test: 5 images per class at 32 px,
    one epoch, the first architecture of each dataset, one epoch per tuning phase, ensembles of
    that architecture and its tuned copy, students of it trained one epoch; ``top``
    updates the top-level keys (e.g. ``bootstrap``, ``gpus``)."""
    import yaml

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config.update(top)
    for ds in config["datasets"].values():
        ds["synthetic"].update(per_class=5, size=32)
        ds.update(image_size=32, epochs=1, batch_size=8, archs=ds["archs"][:1])
        if "tune" in ds:
            ds["tune"].update(archs=ds["archs"], head_epochs=1, finetune_epochs=1)
        if "regression" in ds:
            ds["regression"].update(from_arch=ds["archs"][0], head_epochs=1, finetune_epochs=1)
        if "ensembles" in ds:  # of the one architecture and its tuned copy (the dataset must have `tune`)
            ds["ensembles"] = {name: [ds["archs"][0], f"{ds['archs'][0]}-tuned"] for name in ds["ensembles"]}
        for student in ds.get("distill", {}).values():
            student.update(arch=ds["archs"][0], epochs=1)
    return config
