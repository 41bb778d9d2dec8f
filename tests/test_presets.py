"""Presets and EmotionRecognizer: a preset built from an evaluated tiny run into a temporary
presets folder, its card, `presets`, `predict` without a run folder, the same figures from
Python as from the CLI, and the wheel carrying the detector (and any preset)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kerascv_emotion.cli import main
from kerascv_emotion.io import read_json
from kerascv_emotion.presets import PRESETS_ENV

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[1]
WHEEL_LIMIT_BYTES = 25_000_000


def _invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def evaluated_run(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``tiny_run`` evaluated on its val split with 50 bootstrap resamples."""
    from kerascv_emotion.evaluation import evaluate

    run = tmp_path_factory.mktemp("evaluated") / "mobilenet"
    shutil.copytree(tiny_run, run)
    evaluate(run, split="val", bootstrap=50)
    return run


@pytest.fixture
def presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "presets"
    monkeypatch.setenv(PRESETS_ENV, str(folder))
    return folder


def _build(run: Path, name: str = "fer2013", *extra: str, code: int = 0) -> str:
    return _invoke("build-preset", str(run), "--name", name, "--data-licence", "synthetic, no licence needed",
                   "--train-command", "kerascv-emotion train --arch mobilenet ...", "--commit", "abc1234",
                   *extra, code=code)


def test_build_preset_writes_the_card_from_the_run(evaluated_run: Path, presets: Path, tiny_run: Path) -> None:
    out = _build(evaluated_run, "fer2013", "--note", "tiny test model")
    assert f"wrote preset {presets / 'fer2013'}" in out
    card = read_json(presets / "fer2013" / "card.json")
    config = read_json(evaluated_run / "config.json")
    metrics = read_json(evaluated_run / "eval" / "val" / "metrics.json")
    assert card["classes"] == config["output_names"] and card["task"] == "classification"
    assert card["input"] == {"faces": True, "image_size": 32, "channels": 3, "scaling": "uint8 / 255",
                             "resize": "bilinear stretch of the face box"}
    for key, block in (("accuracy", "accuracy"), ("macro_f1", "macro_f1")):
        assert card["validation"][key] == {k: metrics["bootstrap"][block][k] for k in ("estimate", "low", "high")}
    assert card["validation"]["images"] == metrics["n"] and card["validation"]["split"] == "val"
    assert card["validation"]["intervals"] == {"method": "percentile bootstrap", "confidence": 0.95, "resamples": 50}
    training = card["training"]
    assert (training["commit"], training["data_licence"]) == ("abc1234", "synthetic, no licence needed")
    assert training["command"].startswith("kerascv-emotion train") and training["settings"]["arch"] == "mobilenet"
    assert training["images"] == config["samples"] and training["data"] == "synthetic-faces"
    bundled = presets / "fer2013" / "model.keras"
    assert card["size_bytes"] == bundled.stat().st_size and card["notes"] == ["tiny test model"]
    assert bundled.stat().st_size < (evaluated_run / "model.keras").stat().st_size  # no optimizer state
    from kerascv_emotion.runs import load_model

    for ours, theirs in zip(load_model(bundled).weights, load_model(evaluated_run / "model.keras").weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    assert (presets / "fer2013" / "calibration.json").read_bytes() == (evaluated_run / "calibration.json").read_bytes()
    listing = _invoke("presets")
    assert listing.startswith("fer2013 (default): mobilenet, 8 classes") and "commit abc1234" in listing
    assert f"val accuracy {metrics['accuracy']:.3f}" in listing
    assert "exists; give --replace" in _build(evaluated_run, "fer2013", code=1)
    assert "has no eval/val/metrics.json" in _build(tiny_run, "other", code=1)
    assert card["int8"] is None  # the run has no int8 export yet
    _invoke("export", str(evaluated_run), "--format", "litert", "--quantize", "int8")
    export = read_json(evaluated_run / "export" / "litert-int8" / "export.json")
    _build(evaluated_run, "with-int8")
    int8 = read_json(presets / "with-int8" / "card.json")["int8"]
    assert int8["format"] == "LiteRT int8" and int8["latency"] == export["latency"]
    assert int8["latency"]["ms_median"] > 0
    assert (int8["size_bytes"], int8["export_accuracy"]) == (export["size_bytes"], export["export_accuracy"])


def test_build_preset_starts_tensorflow_quietly(evaluated_run: Path, tmp_path: Path) -> None:
    """build-preset loads the model: TensorFlow's start-up lines (CUDA probe, oneDNN) stay off
    stderr, as for every command."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | {"PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "kerascv_emotion", "build-preset", str(evaluated_run), "--name", "quiet",
                           "--data-licence", "synthetic", "--train-command", "kerascv-emotion train ...",
                           "--commit", "abc1234", "--into", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0 and "wrote preset" in done.stdout, done.stderr
    assert not [line for line in done.stderr.splitlines()
                if any(word in line for word in ("oneDNN", "cuda", "absl", "cpu_feature_guard"))], done.stderr


def test_predict_without_a_run_and_the_recognizer_agree(evaluated_run: Path, presets: Path, tmp_path: Path) -> None:
    from kerascv_emotion import EmotionRecognizer

    assert "no preset 'fer2013'" in _invoke("predict", str(DATA / "astronaut.jpg"), "--out", str(tmp_path / "x.csv"),
                                            code=1)
    _build(evaluated_run)
    photos = [str(DATA / name) for name in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg")]
    out = _invoke("predict", *photos, "--out", str(tmp_path / "p.csv"))
    assert f"no face: {photos[1]}" in out and "1 row(s) from 1 image(s)" in out and "2 without a face" in out
    (row,) = _rows(tmp_path / "p.csv")
    assert row["path"] == photos[0]

    recognizer = EmotionRecognizer.from_preset()
    with Image.open(photos[0]) as img:
        as_pil = recognizer.predict(img)
        as_array = recognizer.predict(np.asarray(img))
    for records in (recognizer.predict(photos[0]), as_pil, as_array):
        (record,) = records
        assert record["label"] == row["label"] and record["box"] == tuple(int(row[k]) for k in (
            "face_x", "face_y", "face_w", "face_h"))
        np.testing.assert_allclose([record["probabilities"][c] for c in recognizer.classes],
                                   [float(row[f"prob_{c}"]) for c in recognizer.classes], atol=1e-6)
        assert len(record["landmarks"]) == 5 and record["score"] >= 0.9
    assert recognizer.predict(photos[1]) == []
    many = recognizer.predict_many(photos)
    assert list(many) == photos and [len(v) for v in many.values()] == [1, 0, 0]
    assert many[photos[0]][0]["label"] == row["label"]

    whole = EmotionRecognizer.from_run(evaluated_run, detect_faces=False).predict(photos[1])
    assert [r["box"] for r in whole] == [(0, 0, 256, 170)] and whole[0]["landmarks"] is None

    _invoke("predict", photos[0], "--run", str(evaluated_run), "--out", str(tmp_path / "r.csv"))
    assert [r["face_w"] for r in _rows(tmp_path / "r.csv")] == ["256"]  # a run: the whole image by default
    assert "not both" in _invoke("predict", photos[0], "--run", str(evaluated_run), "--preset", "fer2013",
                                 "--out", str(tmp_path / "b.csv"), code=1)


def test_a_whole_image_preset_predicts_whole_images(evaluated_run: Path, presets: Path, tmp_path: Path) -> None:
    from kerascv_emotion import EmotionRecognizer

    _build(evaluated_run, "whole", "--whole-images")
    assert read_json(presets / "whole" / "card.json")["input"]["faces"] is False
    cat = str(DATA / "chelsea.jpg")
    assert [r["box"] for r in EmotionRecognizer.from_preset("whole").predict(cat)] == [(0, 0, 256, 170)]
    assert EmotionRecognizer.from_preset("whole", detect_faces=True).predict(cat) == []
    _invoke("predict", cat, "--preset", "whole", "--out", str(tmp_path / "w.csv"))
    assert [r["face_w"] for r in _rows(tmp_path / "w.csv")] == ["256"]
    assert "whole images" in _invoke("presets")


def test_an_array_of_the_wrong_type_is_a_one_line_error() -> None:
    from kerascv_emotion.errors import ConfigError
    from kerascv_emotion.recognizer import to_image

    with pytest.raises(ConfigError, match="must be uint8"):
        to_image(np.zeros((8, 8, 3), dtype=np.float32))
    assert to_image(np.zeros((8, 8, 1), dtype=np.uint8)).mode == "L"


def test_the_wheel_carries_the_detector_and_the_presets(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "kerascv_emotion", source / "kerascv_emotion",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist")], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("kerascv_emotion-*.whl")
    assert wheel.stat().st_size <= WHEEL_LIMIT_BYTES
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("face_detection_yunet_2023mar.onnx", "LICENSE", "source.json"):
        assert f"kerascv_emotion/assets/yunet/{name}" in names
    bundled = [p.relative_to(REPO).as_posix() for p in (REPO / "kerascv_emotion" / "assets" / "presets").glob("*/*")]
    assert all(name in names for name in bundled)


SHARED_DATA = REPO.parent / "shared" / "data"
# how each bundled preset's validation images are indexed from ../shared/data (the reader and
# split options its card's training section records)
PRESET_DATA = {"fer2013": "fer2013", "covid": "covid-xray"}
"""The ../shared/data folder each bundled preset was trained on; how it was indexed is on its card."""


def _index_options(reader: dict) -> list[str]:
    """`kerascv-emotion index` options that rebuild a preset's index from its card's reader."""
    options = ["--format", reader["format"], "--val-fraction", str(reader["val_fraction"]),
               "--test-fraction", str(reader["test_fraction"]), "--seed", str(reader["seed"])]
    if reader.get("classes"):
        options += ["--classes", ",".join(reader["classes"])]
    for old, new in (reader.get("class_map") or {}).items():
        options += ["--class-map", f"{old}={new}"]
    return options


def _bundled() -> list[str]:
    folder = Path(__file__).resolve().parents[1] / "kerascv_emotion" / "assets" / "presets"
    return sorted(p.name for p in folder.iterdir() if (p / "card.json").is_file()) if folder.is_dir() else []


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", _bundled())
def test_a_bundled_presets_card_figures_reproduce(name: str, tmp_path: Path) -> None:
    """The validation accuracy and macro F1 on the card equal those of the bundled model file,
    evaluated again (same split, TTA and temperature) on ../shared/data."""
    source = REPO / "kerascv_emotion" / "assets" / "presets" / name
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    card = read_json(source / "card.json")
    index = tmp_path / "index.csv"
    _invoke("index", str(SHARED_DATA / PRESET_DATA[name]), "--out", str(index),
            *_index_options(card["training"]["reader"]))
    copy = tmp_path / name
    shutil.copytree(source, copy)  # evaluate writes eval/ into the folder: never into the package
    validation = card["validation"]
    _invoke("evaluate", str(copy), "--index", str(index), "--split", validation["split"], "--bootstrap", "0",
            "--tta", validation["tta"] or "none", "--threads", "0")
    metrics = read_json(copy / "eval" / validation["split"] / "metrics.json")
    assert metrics["n"] == validation["images"]
    assert metrics["accuracy"] == pytest.approx(validation["accuracy"]["estimate"], abs=2e-3)
    assert metrics["macro_avg"]["f1"] == pytest.approx(validation["macro_f1"]["estimate"], abs=2e-3)
