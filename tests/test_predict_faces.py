"""`predict --detect-faces` with each detector on real photos (tests/data/README.md): rows with
YuNet's landmarks, eye-line alignment, photos without a face, option errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from kerascv_emotion.cli import main
from kerascv_emotion.data.images import prepare_image
from kerascv_emotion.face_detection import LANDMARK_NAMES, aligned_face, find_faces
from kerascv_emotion.predict import predict_frames

DATA = Path(__file__).parent / "data"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_yunet_rows_carry_landmarks_haar_rows_do_not(tiny_run: Path, tmp_path: Path) -> None:
    photos = [str(DATA / name) for name in ("astronaut.jpg", "chelsea.jpg", "coffee.jpg")]
    out = _invoke("predict", str(tiny_run), *photos, "--detect-faces", "--out", str(tmp_path / "y.csv"))
    assert f"no face: {photos[1]}" in out and f"no face: {photos[2]}" in out
    assert "1 row(s) from 1 image(s)" in out and "2 without a face" in out
    (row,) = _rows(tmp_path / "y.csv")
    assert row["path"] == photos[0] and float(row["face_score"]) >= 0.9
    assert [c for c in row if c.endswith(("_x", "_y")) and not c.startswith("face")] == [
        f"{point}_{axis}" for point in LANDMARK_NAMES for axis in "xy"]
    x, y, w, h = (int(row[k]) for k in ("face_x", "face_y", "face_w", "face_h"))
    assert x < float(row["right_eye_x"]) < float(row["left_eye_x"]) < x + w and y < float(row["nose_y"]) < y + h

    _invoke("predict", str(tiny_run), photos[0], "--detect-faces", "--detector", "haar", "--out", str(tmp_path / "h.csv"))
    (haar,) = _rows(tmp_path / "h.csv")
    assert "face_score" not in haar and "nose_x" not in haar and abs(int(haar["face_x"]) - x) < 15


def test_align_without_landmarks_is_a_one_line_error(tiny_run: Path, tmp_path: Path) -> None:
    out = _invoke("predict", str(tiny_run), str(DATA / "astronaut.jpg"), "--detect-faces", "--detector", "haar",
                  "--align", "--out", str(tmp_path / "p.csv"), code=1)
    assert out.startswith("Error: --align levels the eyes") and out.count("\n") == 1
    assert not (tmp_path / "p.csv").exists()


class _Recorder:
    """A stand-in model: records each batch and answers one output per image."""

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        self.batches.append(x)
        return np.tile([0.25, 0.75], (len(x), 1))


def test_align_feeds_the_model_the_levelled_crop() -> None:
    with Image.open(DATA / "astronaut.jpg") as img:
        photo = img.rotate(-12, resample=Image.Resampling.BILINEAR, center=(112, 60)).convert("RGB")
    config = {"task": "classification", "output_names": ["a", "b"], "image_size": 32, "channels": 3}
    (face,) = find_faces(photo)
    fed = {}
    for align in (False, True):
        model = _Recorder()
        result = predict_frames(model, config, [("tilted", None, photo)], 1, detect_faces=True, align=align, progress=False)
        assert [r["face_x"] for r in result.rows] == [face.box[0]] and result.rows[0]["label"] == "b"
        fed[align] = np.rint(model.batches[0][0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(fed[True], prepare_image(aligned_face(photo, face, 3), "tilted", 32, 3))
    np.testing.assert_array_equal(fed[False], prepare_image(photo, "tilted", 32, 3, face.box))
    assert np.abs(fed[True].astype(int) - fed[False]).mean() > 1
