"""`predict`: inputs (files, folders, globs), preprocessing equal to training's, face
detection on a real portrait, skipped files and faceless images, annotated copies."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kerascv_emotion.cli import main
from kerascv_emotion.errors import DataError
from kerascv_emotion.face_detection import expand_box, find_faces
from kerascv_emotion.predict import collect_inputs, predict


def _grace_hopper() -> Path:
    import matplotlib.cbook

    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_collect_inputs_files_folders_globs(tmp_path: Path) -> None:
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/img2.png", "a/img10.png", "a/deep/x.jpg", "a/readme.md", "b.jpg"):
        (tmp_path / name).write_bytes(b"")
    files, skipped = collect_inputs([tmp_path / "a", str(tmp_path / "*.jpg"), tmp_path / "b.jpg"])
    assert [Path(f).relative_to(tmp_path).as_posix() for f in files] == [
        "a/img2.png", "a/img10.png", "a/deep/x.jpg", "b.jpg"]
    assert [Path(s["path"]).name for s in skipped] == ["readme.md"]
    files, _ = collect_inputs([str(tmp_path / "**" / "*.jpg")])
    assert sorted(Path(f).name for f in files) == ["b.jpg", "x.jpg"]
    with pytest.raises(DataError, match="does not exist"):
        collect_inputs([tmp_path / "missing.jpg"])
    with pytest.raises(DataError, match="matches no file"):
        collect_inputs([str(tmp_path / "*.gif")])


def test_expand_box_grows_and_clips() -> None:
    assert expand_box((10, 20, 100, 50), 0.1, 1000, 1000) == (0, 15, 120, 60)
    assert expand_box((900, 900, 100, 100), 0.5, 1000, 950) == (850, 850, 150, 100)


def test_no_face_in_a_flat_image() -> None:
    assert find_faces(Image.new("RGB", (200, 150), (120, 120, 120))) == []


def test_whole_images_are_preprocessed_as_in_training(tiny_run: Path, tiny_faces: Path) -> None:
    from kerascv_emotion.data.cache import load_split
    from kerascv_emotion.data.index import read_index
    from kerascv_emotion.runs import load_model

    index = read_index(tiny_faces)
    cached = load_split(index, "test", 32, 3, cache_dir=tiny_faces.parent / ".cache")
    expected = np.asarray(load_model(tiny_run / "model.keras").predict_on_batch(
        np.asarray(cached.images, dtype=np.float32) / 255.0))
    files = [str(index.root / p) for p in cached.paths]
    result = predict(tiny_run, files, batch_size=5, progress=False, calibrate=False)
    assert [r["path"] for r in result.rows] == files and not result.skipped
    probs = np.array([[r[f"prob_{c}"] for c in index.class_names] for r in result.rows])
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    first = result.rows[0]
    with Image.open(files[0]) as img:
        assert (first["face_x"], first["face_y"], first["face_w"], first["face_h"]) == (0, 0, *img.size)
    assert first["label"] == index.class_names[int(np.argmax(expected[0]))]


def test_grace_hopper_one_face_annotated(tiny_run: Path, tmp_path: Path) -> None:
    out = _invoke("predict", str(tiny_run), str(_grace_hopper()), "--detect-faces", "--out",
                  str(tmp_path / "p.csv"), "--annotate", str(tmp_path / "ann"))
    rows = _rows(tmp_path / "p.csv")
    assert len(rows) == 1 and "1 row(s) from 1 image(s)" in out
    x, y, w, h = (int(rows[0][k]) for k in ("face_x", "face_y", "face_w", "face_h"))
    # her face (512x600 portrait): eyes at about y=190, chin at about y=320, cheeks x=170..360
    assert x <= 170 and y <= 160 and x + w >= 360 and y + h >= 320
    assert w <= 300 and h <= 300
    probs = [float(v) for k, v in rows[0].items() if k.startswith("prob_")]
    assert len(probs) == 8 and abs(sum(probs) - 1) < 1e-4 and float(rows[0]["probability"]) == max(probs)
    with Image.open(tmp_path / "ann" / "grace_hopper.png") as ann, Image.open(_grace_hopper()) as src:
        assert ann.size == src.size


def test_folder_with_a_bad_file_and_a_faceless_image(tiny_run: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / "sub" / "portrait.jpg").write_bytes(_grace_hopper().read_bytes())
    (photos / "notes.txt").write_text("not an image")
    (photos / "broken.jpg").write_text("not a jpeg either")
    Image.new("RGB", (160, 120), (90, 140, 200)).save(photos / "sky.png")
    out = _invoke("predict", str(tiny_run), str(photos), "--detect-faces", "--out", str(tmp_path / "p.csv"))
    rows = _rows(tmp_path / "p.csv")
    assert [Path(r["path"]).name for r in rows] == ["portrait.jpg"]
    assert f"skipped {photos / 'notes.txt'}: not an image or video extension" in out
    assert f"skipped {photos / 'broken.jpg'}: not a recognised image format" in out
    assert f"no face: {photos / 'sky.png'}" in out
