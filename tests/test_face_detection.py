"""Face detection on real photos (tests/data/README.md: a NASA portrait with one face, a cat and
a cup with none), the bundled YuNet model and its provenance, eye-line alignment."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from kerascv_emotion.errors import ConfigError
from kerascv_emotion.face_detection import (
    DEFAULT_DETECTOR,
    YUNET_MODEL,
    Face,
    aligned_face,
    find_faces,
)

DATA = Path(__file__).parent / "data"


def _photo(name: str) -> Image.Image:
    with Image.open(DATA / name) as img:
        return img.convert("RGB")


def test_bundled_yunet_is_the_recorded_file() -> None:
    source = json.loads((YUNET_MODEL.parent / "source.json").read_text(encoding="utf-8"))
    data = YUNET_MODEL.read_bytes()
    assert source["file"] == YUNET_MODEL.name and len(data) == source["size_bytes"]
    assert hashlib.sha256(data).hexdigest() == source["sha256"]
    assert "MIT License" in (YUNET_MODEL.parent / "LICENSE").read_text(encoding="utf-8")
    assert DEFAULT_DETECTOR == "yunet"


@pytest.mark.parametrize("detector", ["yunet", "haar"])
def test_one_face_in_the_astronaut_portrait(detector: str) -> None:
    faces = find_faces(_photo("astronaut.jpg"), margin=0, detector=detector)
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    # her face in the 256x256 copy: eyes at about y=53, mouth at about y=72, cheeks x=92..132
    assert 80 <= x <= 95 and 25 <= y <= 40 and x + w >= 132 and y + h >= 80 and w <= 60 and h <= 60
    if detector == "haar":
        assert faces[0].landmarks is None and faces[0].score is None
        return
    assert faces[0].score is not None and faces[0].score >= 0.9
    (right_x, right_y), (left_x, left_y), (nose_x, nose_y), mouth_right, mouth_left = faces[0].landmarks
    assert 95 <= right_x < nose_x < left_x <= 128 and abs(right_y - left_y) < 3
    assert right_y < nose_y < mouth_right[1] and mouth_right[0] < mouth_left[0]
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in faces[0].landmarks)


@pytest.mark.parametrize("name", ["chelsea.jpg", "coffee.jpg"])
@pytest.mark.parametrize("detector", ["yunet", "haar"])
def test_no_face_in_a_cat_or_a_cup(name: str, detector: str) -> None:
    assert find_faces(_photo(name), detector=detector) == []


def test_yunet_finds_a_close_up_that_fills_the_frame() -> None:
    close_up = _photo("astronaut.jpg").crop((80, 20, 145, 100)).resize((640, 788), Image.Resampling.BILINEAR)
    faces = find_faces(close_up, margin=0)
    assert len(faces) == 1 and faces[0].box[2] > 300  # YuNet alone misses faces above ~300 px


def test_margin_grows_the_box_and_bad_options_are_one_line_errors() -> None:
    photo = _photo("astronaut.jpg")
    (tight,), (grown,) = find_faces(photo, margin=0), find_faces(photo, margin=0.2)
    assert grown.box[0] < tight.box[0] and grown.box[2] > tight.box[2] and grown.landmarks == tight.landmarks
    with pytest.raises(ConfigError, match="face detector 'mtcnn'"):
        find_faces(photo, detector="mtcnn")
    with pytest.raises(ConfigError, match="landmarks"):
        aligned_face(photo, Face((0, 0, 10, 10)), 3)


def _spots(img: Image.Image) -> list[tuple[float, float]]:
    """Centroids of the bright pixels in the left and right halves of ``img``."""
    gray = np.asarray(img.convert("L"), dtype=np.float64)
    out = []
    for half in (slice(0, gray.shape[1] // 2), slice(gray.shape[1] // 2, None)):
        ys, xs = np.nonzero(gray[:, half] > 128)
        out.append((float(xs.mean()) + (half.start or 0), float(ys.mean())))
    return out


def test_aligned_face_levels_the_eye_line() -> None:
    img = Image.new("RGB", (200, 200))
    draw = ImageDraw.Draw(img)
    right_eye, left_eye = (80.0, 100.0), (120.0, 80.0)  # tilted by atan2(-20, 40) = -26.6 degrees
    for cx, cy in (right_eye, left_eye):
        draw.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=(255, 255, 255))
    face = Face((60, 60, 80, 80), (right_eye, left_eye, (100, 100), (90, 115), (115, 110)), 0.99)
    crop = aligned_face(img, face, 3)
    assert crop.size == (80, 80) and crop.mode == "RGB"
    (rx, ry), (lx, ly) = _spots(crop)
    assert abs(ry - ly) < 1.0 and math.hypot(lx - rx, ly - ry) == pytest.approx(math.hypot(40, 20), abs=1.0)
    # the box centre lay 10 px straight below the eyes' midpoint; turned by -26.6 degrees with
    # the image, the midpoint sits 10 px from the crop's centre at (40, 40), in the turned direction
    angle = math.atan2(-20, 40)
    assert ((rx + lx) / 2, (ry + ly) / 2) == pytest.approx(
        (40 - 10 * math.sin(angle), 40 - 10 * math.cos(angle)), abs=1.0)
    assert aligned_face(img, face, 1).mode == "L"


@pytest.mark.parametrize("size", [(1, 1), (5, 5), (1, 1000), (3000, 2000)])
def test_degenerate_and_flat_images_give_no_face(size: tuple[int, int]) -> None:
    # YuNet answers a 1x1 image with an infinite box; such boxes are dropped, the rest clipped
    assert find_faces(Image.new("L", size, 128)) == []
