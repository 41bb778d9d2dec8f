"""Shared fixtures: tiny synthetic data sets made once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
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


# `python -m kerascv_emotion ARGS` with one more Keras callback: after the first batch of the
# (0-based) epoch PAUSE_EPOCH it touches MARKER and waits until its stdin is closed
PAUSED_CLI = """
import sys
from pathlib import Path

from kerascv_emotion import training
from kerascv_emotion.cli import main

marker, pause_epoch = Path(sys.argv[1]), int(sys.argv[2])
del sys.argv[1:3]
own_callbacks = training._callbacks


def callbacks_with_pause(*args, **kwargs):
    import keras

    class Pause(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == pause_epoch and batch == 0 and not marker.exists():
                marker.touch()
                sys.stdin.read()

    callbacks, checkpoint = own_callbacks(*args, **kwargs)
    return [*callbacks, Pause()], checkpoint


training._callbacks = callbacks_with_pause
main(prog_name="kerascv-emotion")
"""


def start_paused_cli(args: Sequence[str], pause_epoch: int, folder: Path, timeout_s: float = 300) -> subprocess.Popen:
    """``python -m kerascv_emotion *args`` stopped in the middle of (0-based) epoch ``pause_epoch``
    of a train or tune, after its first batch: it holds its run's lock and the resumable state
    of the epochs before, for as long as the test needs. Returns once it is there (or fails
    the test with its output, in ``folder/paused.log``); closing its stdin lets it go on,
    killing it is a kill mid-epoch."""
    marker, log = folder / "paused", folder / "paused.log"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", PAUSED_CLI, str(marker), str(pause_epoch), *args],
                                stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout_s
    while not marker.exists():  # the child cannot get past the pause; only this wait is bounded
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"{args[0]} never reached epoch {pause_epoch} (exit {proc.returncode}): {log.read_text()[-3000:]}")
        time.sleep(0.05)
    return proc
