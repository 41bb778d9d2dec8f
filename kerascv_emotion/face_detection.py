"""Face detection for prediction on photos, with one of two detectors:

* ``yunet`` (the default): OpenCV's YuNet CNN through ``cv2.FaceDetectorYN``; its ONNX file
  (232 KB, MIT licence) ships inside this package (``assets/yunet/``, provenance in
  ``source.json``). It also gives five landmarks per face, used to level the eye line
  (:func:`aligned_face`).
* ``haar``: OpenCV's frontal-face Haar cascade (the model ships inside the
  ``opencv-python-headless`` wheel, 4.x; 5.x wheels dropped it); boxes only.

Boxes are grown by a margin; annotated copies get boxes and labels drawn. Boxes are
``(x, y, w, h)`` in pixels of the upright image (after the EXIF orientation), the
convention of an index's ``face_x, face_y, face_w, face_h`` columns.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from kerascv_emotion.data.images import MAX_IMAGE_SIDE, to_mode
from kerascv_emotion.errors import ConfigError

Box = tuple[int, int, int, int]
Landmarks = tuple[tuple[float, float], ...]
"""Five ``(x, y)`` points, pixels of the upright image: the person's right eye, left eye, nose
tip, right and left mouth corners (so an upright face's right eye is on the image's left)."""
LANDMARK_NAMES = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
"""The order of :data:`Landmarks`' points, as YuNet gives them."""
CASCADE = "haarcascade_frontalface_default.xml"
YUNET_MODEL = Path(__file__).parent / "assets" / "yunet" / "face_detection_yunet_2023mar.onnx"
DETECTORS = ("yunet", "haar")
DEFAULT_DETECTOR = "yunet" if YUNET_MODEL.is_file() else "haar"
YUNET_SCORE = 0.9
"""Smallest YuNet score kept (OpenCV's own default)."""
YUNET_NMS = 0.3
"""IoU above which the weaker of two YuNet boxes is dropped (OpenCV's default), within a scale
and across :data:`YUNET_SIDES`."""
YUNET_SIDES = (640, 256)
"""YuNet searches each photo shrunk to at most these many pixels a side (one pass each; boxes
scaled back and merged). YuNet finds faces of about 10 to 300 pixels (opencv_zoo's model
notes): the 640 pass finds small faces in group photos, the 256 pass close-ups that fill the
frame."""
DEFAULT_MARGIN = 0.1
"""Each side of a detected box grows by this fraction of the box's side (a judgement, not a
measurement): the cascade's box is tight around forehead and chin, FER2013-style crops keep a
little more around the face. 0 keeps the cascade's own box."""
DETECT_MAX_SIDE = MAX_IMAGE_SIDE
"""Photos are searched at most this many pixels a side (shrunk, aspect kept; boxes scaled back)."""
MIN_FACE_FRACTION = 0.05
"""Smallest face searched for, as a fraction of the (shrunk) photo's shorter side (at least 24 px)."""


def _opencv() -> Any:
    """``cv2``, or a one-line ConfigError naming the package to install."""
    try:
        import cv2
    except ImportError as exc:
        raise ConfigError(f"face detection needs OpenCV: pip install 'opencv-python-headless<5' ({exc})") from None
    return cv2


@functools.lru_cache(maxsize=1)
def _cascade() -> Any:
    """The Haar cascade, loaded once; a one-line ConfigError where OpenCV lacks it."""
    cv2 = _opencv()
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


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` (grown by the margin, clipped to the image), ``landmarks``
    (YuNet only) and the detector's ``score`` (YuNet only, 0..1)."""

    box: Box
    landmarks: Landmarks | None = None
    score: float | None = None


@functools.lru_cache(maxsize=1)
def _yunet() -> Any:
    """The bundled YuNet detector, loaded once; a one-line ConfigError where it cannot be."""
    cv2 = _opencv()
    if not YUNET_MODEL.is_file():
        raise ConfigError(f"the YuNet model {YUNET_MODEL} is missing from this installation; use --detector haar")
    if not hasattr(cv2, "FaceDetectorYN"):
        raise ConfigError(f"OpenCV {cv2.__version__} has no FaceDetectorYN (needs >= 4.8); use --detector haar")
    return cv2.FaceDetectorYN.create(str(YUNET_MODEL), "", (320, 320), YUNET_SCORE, YUNET_NMS, 5000)


def detect_faces_yunet(rgb: np.ndarray) -> list[tuple[Box, Landmarks, float]]:
    """YuNet's faces in a uint8 ``(H, W, 3)`` RGB image, each ``(box, landmarks, score)``, box
    (clipped to the image) and landmarks in pixels of ``rgb``, left to right; one pass per
    :data:`YUNET_SIDES`."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ConfigError(f"detect_faces_yunet needs a uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}")
    cv2 = _opencv()
    detector = _yunet()
    image = Image.fromarray(rgb)
    found: list[np.ndarray] = []
    for scale in sorted({min(1.0, side / max(image.size)) for side in YUNET_SIDES}, reverse=True):
        small = image if scale == 1.0 else image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR)
        detector.setInputSize(small.size)
        _, faces = detector.detect(np.ascontiguousarray(np.asarray(small)[:, :, ::-1]))
        if faces is not None:
            faces = faces.astype(np.float64)
            faces[:, :14] /= scale
            found.extend(face for face in faces if np.isfinite(face).all() and face[2] >= 1 and face[3] >= 1)
    if not found:
        return []
    boxes = [[float(v) for v in face[:4]] for face in found]
    keep = cv2.dnn.NMSBoxes(boxes, [float(face[14]) for face in found], YUNET_SCORE, YUNET_NMS)
    out = []
    for i in np.asarray(keep, dtype=int).reshape(-1):
        face = found[i]
        left, top = max(0, round(face[0])), max(0, round(face[1]))
        right, bottom = min(image.width, round(face[0] + face[2])), min(image.height, round(face[1] + face[3]))
        if right <= left or bottom <= top:
            continue
        box = (left, top, right - left, bottom - top)
        landmarks = tuple((float(face[4 + 2 * k]), float(face[5 + 2 * k])) for k in range(5))
        out.append((box, landmarks, float(face[14])))
    return sorted(out, key=lambda f: (f[0][0], f[0][1]))  # type: ignore[return-value]


def expand_box(box: Sequence[int], margin: float, width: int, height: int) -> Box:
    """``box`` grown by ``margin`` x its width (height) on the left and right (top and
    bottom), clipped to a ``width`` x ``height`` image."""
    x, y, w, h = box
    left, top = max(0, round(x - margin * w)), max(0, round(y - margin * h))
    right, bottom = min(width, round(x + w + margin * w)), min(height, round(y + h + margin * h))
    return left, top, right - left, bottom - top


def find_faces(img: Image.Image, margin: float = DEFAULT_MARGIN, detector: str = DEFAULT_DETECTOR) -> list[Face]:
    """Faces in an upright image (any mode), left to right, each box grown by ``margin``
    (:func:`expand_box`), found by ``detector`` (one of :data:`DETECTORS`)."""
    if margin < 0:
        raise ConfigError(f"face margin {margin}: use 0 or more (a fraction of the face's side)")
    if detector not in DETECTORS:
        raise ConfigError(f"face detector {detector!r}: use one of {list(DETECTORS)}")
    if detector == "yunet":
        return [Face(expand_box(box, margin, img.width, img.height), landmarks, score)
                for box, landmarks, score in detect_faces_yunet(np.asarray(to_mode(img, 3)))]
    gray = to_mode(img, 1)
    scale = min(1.0, DETECT_MAX_SIDE / max(gray.size))
    if scale < 1.0:
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))),
                           Image.Resampling.BILINEAR)
    boxes = [tuple(round(v / scale) for v in box) for box in detect_faces(np.asarray(gray))]
    return [Face(expand_box(box, margin, img.width, img.height)) for box in boxes]


def aligned_face(img: Image.Image, face: Face, channels: int) -> Image.Image:
    """``face.box`` cut from ``img`` (any mode) turned about the midpoint between the eyes so
    that the eye line is level (bilinear; pixels from outside the image are black), the box
    turned with it and its size unchanged; ``L`` or ``RGB`` (``channels`` 1 or 3). Needs
    landmarks (the yunet detector)."""
    x, y, w, h = face.box
    if face.landmarks is None:
        raise ConfigError("aligning faces needs eye landmarks: use the yunet detector")
    (right_x, right_y), (left_x, left_y) = face.landmarks[:2]
    angle = math.atan2(left_y - right_y, left_x - right_x)
    pad = max(w, h)
    left, top = x - pad, y - pad
    region = to_mode(img.crop((left, top, x + w + pad, y + h + pad)), channels)
    eye_x, eye_y = (right_x + left_x) / 2 - left, (right_y + left_y) / 2 - top
    turned = region.rotate(math.degrees(angle), resample=Image.Resampling.BILINEAR, center=(eye_x, eye_y))
    dx, dy = x + w / 2 - left - eye_x, y + h / 2 - top - eye_y  # box centre from the eyes, turned with the image
    centre_x = eye_x + math.cos(angle) * dx + math.sin(angle) * dy
    centre_y = eye_y - math.sin(angle) * dx + math.cos(angle) * dy
    x0, y0 = round(centre_x - w / 2), round(centre_y - h / 2)
    return turned.crop((x0, y0, x0 + w, y0 + h))


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
