"""Face detection for prediction on photos: OpenCV's frontal-face Haar cascade (the model
ships inside the ``opencv-python-headless`` wheel, 4.x; 5.x wheels dropped it), boxes grown
by a margin, and annotated copies with boxes and labels drawn.

Boxes are ``(x, y, w, h)`` in pixels of the upright image (after the EXIF orientation), the
convention of an index's ``face_x, face_y, face_w, face_h`` columns.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from kerascv_emotion.data.images import MAX_IMAGE_SIDE, to_mode
from kerascv_emotion.errors import ConfigError

Box = tuple[int, int, int, int]
CASCADE = "haarcascade_frontalface_default.xml"
DEFAULT_MARGIN = 0.1
"""Each side of a detected box grows by this fraction of the box's side (a judgement, not a
measurement): the cascade's box is tight around forehead and chin, FER2013-style crops keep a
little more around the face. 0 keeps the cascade's own box."""
DETECT_MAX_SIDE = MAX_IMAGE_SIDE
"""Photos are searched at most this many pixels a side (shrunk, aspect kept; boxes scaled back)."""
MIN_FACE_FRACTION = 0.05
"""Smallest face searched for, as a fraction of the (shrunk) photo's shorter side (at least 24 px)."""


@functools.lru_cache(maxsize=1)
def _cascade() -> Any:
    """The Haar cascade, loaded once; a one-line ConfigError where OpenCV lacks it."""
    try:
        import cv2
    except ImportError as exc:
        raise ConfigError(f"face detection needs OpenCV: pip install 'opencv-python-headless<5' ({exc})") from None
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if folder is None or not hasattr(cv2, "CascadeClassifier"):
        raise ConfigError(f"OpenCV {cv2.__version__} ships no Haar cascades (5.x dropped them); "
                          "pip install 'opencv-python-headless<5'")
    cascade = cv2.CascadeClassifier(folder + CASCADE)
    if cascade.empty():
        raise ConfigError(f"OpenCV {cv2.__version__}: cannot load {folder + CASCADE}")
    return cascade


def detect_faces(gray: np.ndarray) -> list[Box]:
    """Face boxes in a uint8 ``(H, W)`` grayscale image, left to right (the cascade's own
    boxes, no margin)."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ConfigError(f"detect_faces needs a uint8 (H, W) image, got {gray.dtype} {gray.shape}")
    side = max(24, int(MIN_FACE_FRACTION * min(gray.shape)))
    found = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
    return sorted((tuple(int(v) for v in box) for box in found), key=lambda b: (b[0], b[1]))  # type: ignore[misc]


def expand_box(box: Sequence[int], margin: float, width: int, height: int) -> Box:
    """``box`` grown by ``margin`` x its width (height) on the left and right (top and
    bottom), clipped to a ``width`` x ``height`` image."""
    x, y, w, h = box
    left, top = max(0, round(x - margin * w)), max(0, round(y - margin * h))
    right, bottom = min(width, round(x + w + margin * w)), min(height, round(y + h + margin * h))
    return left, top, right - left, bottom - top


def find_faces(img: Image.Image, margin: float = DEFAULT_MARGIN) -> list[Box]:
    """Faces in an upright image (any mode), each grown by ``margin`` (:func:`expand_box`)."""
    if margin < 0:
        raise ConfigError(f"face margin {margin}: use 0 or more (a fraction of the face's side)")
    gray = to_mode(img, 1)
    scale = min(1.0, DETECT_MAX_SIDE / max(gray.size))
    if scale < 1.0:
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))),
                           Image.Resampling.BILINEAR)
    boxes = [tuple(round(v / scale) for v in box) for box in detect_faces(np.asarray(gray))]
    return [expand_box(box, margin, img.width, img.height) for box in boxes]


def annotate(img: Image.Image, boxes: Sequence[Box], labels: Sequence[str]) -> Image.Image:
    """An RGB copy of ``img`` with each box outlined and its label written above it."""
    out = to_mode(img, 3).copy()
    draw = ImageDraw.Draw(out)
    thickness = max(2, round(min(out.size) / 200))
    font_size = max(12, round(min(out.size) / 30))
    try:
        font: Any = ImageDraw.ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        font = ImageDraw.ImageFont.load_default()
    for (x, y, w, h), label in zip(boxes, labels, strict=True):
        draw.rectangle((x, y, x + w - 1, y + h - 1), outline=(255, 64, 64), width=thickness)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        text_y = y - (bottom - top) - 2 * thickness if y >= (bottom - top) + 2 * thickness else y + h + thickness
        draw.rectangle((x, text_y, x + right - left + 2 * thickness, text_y + bottom + thickness), fill=(255, 64, 64))
        draw.text((x + thickness, text_y), label, fill=(255, 255, 255), font=font)
    return out
