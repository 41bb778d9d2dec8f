"""Synthetic faces: the 8 AffectNet expressions drawn as offsets (action units) from a neutral
face under a random identity, pose, lighting and background, each with a valence/arousal
label from its class's circumplex point scaled by the drawn intensity."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from kerascv_emotion.data.index import DatasetIndex
from kerascv_emotion.data.synthetic.writer import (
    PER_CLASS,
    SEED,
    SIZE,
    TEST_FRACTION,
    VAL_FRACTION,
    check_settings,
    write_dataset,
)

FACE_CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise")

#: (valence, arousal) of each expression at full intensity, after Russell's circumplex.
CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "anger": (-0.65, 0.6),
    "contempt": (-0.5, 0.3),
    "disgust": (-0.7, 0.35),
    "fear": (-0.6, 0.75),
    "happy": (0.8, 0.5),
    "neutral": (0.0, 0.0),
    "sad": (-0.7, -0.4),
    "surprise": (0.3, 0.85),
}

_SS = 2  # faces are drawn at twice the size, then downsampled (anti-aliased thin lines)

Color = tuple[int, int, int]
Point = tuple[float, float]


@dataclass(frozen=True)
class _Expression:
    """Offsets from the neutral face at full intensity (all zero = neutral).

    Units are the face's own: brow and lid moves in fractions of their range, mouth moves
    in fractions of the mouth's size; ``*_knit``/``nose_wrinkle``/``smirk`` are 0..1.
    """

    brow_raise: float = 0.0  # whole brow up (+) / down (-)
    brow_inner: float = 0.0  # inner brow end up (+, AU1) / down (-, AU4)
    brow_knit: float = 0.0  # inner ends pulled together, glabella furrows (AU4)
    eye_open: float = 0.0  # lids wide (+, AU5) / drooping (-)
    squint: float = 0.0  # lower lid and cheek raised (AU6/AU7)
    mouth_curve: float = 0.0  # lip corners up (+, AU12) / down (-, AU15)
    mouth_open: float = 0.0  # jaw drop (AU26/27)
    mouth_stretch: float = 0.0  # mouth wider (+, AU20) / narrower (-)
    lip_press: float = 0.0  # thin, pressed lips (AU23/24)
    lip_raise: float = 0.0  # upper lip raised (AU10)
    nose_wrinkle: float = 0.0  # AU9
    smirk: float = 0.0  # one lip corner raised (unilateral AU12/14)
    teeth: bool = False  # an open mouth shows teeth


_EXPRESSIONS: dict[str, _Expression] = {
    "neutral": _Expression(),
    "happy": _Expression(brow_raise=0.1, squint=0.55, mouth_curve=1.0, mouth_open=0.45,
                         mouth_stretch=0.3, teeth=True),
    "sad": _Expression(brow_inner=1.0, brow_knit=0.35, eye_open=-0.45, squint=0.1,
                       mouth_curve=-0.85, mouth_stretch=-0.1, lip_press=0.25),
    "surprise": _Expression(brow_raise=1.0, brow_inner=0.25, eye_open=0.9, mouth_open=1.0,
                            mouth_stretch=-0.45),
    "fear": _Expression(brow_raise=0.6, brow_inner=0.75, brow_knit=0.6, eye_open=0.85,
                        mouth_curve=-0.35, mouth_open=0.4, mouth_stretch=0.6),
    "anger": _Expression(brow_raise=-0.75, brow_inner=-0.9, brow_knit=1.0, eye_open=0.1,
                         squint=0.45, mouth_curve=-0.25, mouth_open=0.2, mouth_stretch=-0.15,
                         lip_press=0.85, teeth=True),
    "disgust": _Expression(brow_raise=-0.45, brow_inner=-0.4, brow_knit=0.55, eye_open=-0.2,
                           squint=0.6, mouth_curve=-0.45, mouth_open=0.15, lip_raise=0.9,
                           nose_wrinkle=1.0, teeth=True),
    "contempt": _Expression(eye_open=-0.1, smirk=1.0),
}

_SKIN_LIGHT = np.array([250, 220, 196], dtype=np.float64)
_SKIN_DARK = np.array([82, 52, 36], dtype=np.float64)
_HAIR: tuple[Color, ...] = ((25, 20, 18), (60, 40, 28), (110, 75, 45), (180, 150, 100),
                            (150, 60, 30), (150, 150, 150))


def _shade(color: Sequence[float], factor: float | Sequence[float]) -> Color:
    """``color`` (RGB) times ``factor`` (scalar or per channel), clipped to 0..255."""
    f = (factor, factor, factor) if isinstance(factor, int | float) else factor
    r, g, b = (int(min(255.0, max(0.0, float(c) * float(k)))) for c, k in zip(color[:3], f, strict=True))
    return r, g, b


def _bezier(p0: Point, p2: Point, mid: Point, n: int = 9) -> list[Point]:
    """``n`` points of the quadratic Bezier from ``p0`` to ``p2`` that passes through ``mid``."""
    cx = 2 * mid[0] - (p0[0] + p2[0]) / 2
    cy = 2 * mid[1] - (p0[1] + p2[1]) / 2
    out = []
    for i in range(n):
        t = i / (n - 1)
        u = 1 - t
        out.append((u * u * p0[0] + 2 * u * t * cx + t * t * p2[0],
                    u * u * p0[1] + 2 * u * t * cy + t * t * p2[1]))
    return out


def _background(rng: np.random.Generator, w: int) -> Image.Image:
    """A soft (out-of-focus) clutter of large shapes, RGB ``w x w``."""
    small = max(8, w // 6)
    base = rng.uniform(50, 210) + rng.normal(0, 20, 3)
    img = Image.new("RGB", (small, small), _shade(base, 1.0))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = rng.uniform(-0.3, 1.0, 2) * small
        x1, y1 = x0 + rng.uniform(0.2, 0.9) * small, y0 + rng.uniform(0.2, 0.9) * small
        color = _shade(base + rng.normal(0, 20, 3), 1.0)
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=color)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=color)
    return img.resize((w, w), Image.Resampling.BICUBIC)


def _expression_params(label: str, intensity: float, rng: np.random.Generator) -> dict[str, float]:
    """The face's resting geometry (per-identity jitter) plus ``intensity`` times the class's offsets."""
    e = _EXPRESSIONS[label]
    jitter = {"brow_raise": 0.12, "brow_inner": 0.1, "brow_knit": 0.0, "eye_open": 0.1,
              "squint": 0.0, "mouth_curve": 0.1, "mouth_open": 0.0, "mouth_stretch": 0.08,
              "lip_press": 0.0, "lip_raise": 0.0, "nose_wrinkle": 0.0, "smirk": 0.0}
    params = {k: rng.normal(0.0, s) if s else 0.0 for k, s in jitter.items()}
    for k in params:
        params[k] += intensity * getattr(e, k)
    params["mouth_open"] = max(0.0, params["mouth_open"] * rng.uniform(0.3, 1.4)
                               + abs(rng.normal(0.0, 0.05)))
    for k in ("brow_knit", "squint", "lip_press", "lip_raise", "nose_wrinkle", "smirk"):
        params[k] = max(0.0, params[k] + abs(rng.normal(0.0, 0.08)))
    return params


_ARC = [(math.cos(t), math.sin(t)) for t in np.linspace(0.0, 2 * math.pi, 33)[:-1]]


def _draw_face(img: Image.Image, rng: np.random.Generator, p: dict[str, float], teeth: bool) -> None:
    """Draw a face with expression parameters ``p`` onto the square RGB ``img``, in place.

    The face has its own frame (head ellipse = [-1, 1]^2); a random pose (rotation, offset)
    and scale map it to pixels, so every shape is drawn already rotated.
    """
    w = img.width
    draw = ImageDraw.Draw(img, "RGBA")
    skin = _SKIN_LIGHT + rng.random() ** 1.3 * (_SKIN_DARK - _SKIN_LIGHT)
    skin = skin * rng.normal(1.0, 0.04, 3)
    hair = _HAIR[int(rng.integers(len(_HAIR)))]
    lip = _shade(skin, (0.7, 0.45, 0.45))
    cx, cy = w * (0.5 + rng.normal(0, 0.02, 2))
    a = w * 0.31 * rng.uniform(0.94, 1.06)  # half-width of the head, px
    b = a * rng.uniform(1.15, 1.3)  # half-height, px
    angle = math.radians(rng.normal(0, 4))
    cos, sin = math.cos(angle), math.sin(angle)

    def pt(x: float, y: float) -> Point:
        return cx + x * a * cos - y * b * sin, cy + x * a * sin + y * b * cos

    def oval(x0: float, y0: float, x1: float, y1: float, upper_half: bool = False) -> list[Point]:
        """Polygon of the ellipse inscribed in the face-frame box (its top half: a chord)."""
        mx, my, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        return [pt(mx + rx * c, my + ry * s) for c, s in _ARC if not upper_half or s <= 0]

    def px(v: float) -> int:
        return max(1, int(round(v * b)))

    if rng.random() < 0.4:  # long hair behind the head
        draw.polygon(oval(-1.2, -1.15, 1.2, rng.uniform(0.4, 1.1)), fill=hair)
    draw.polygon([pt(-0.45, 0.6), pt(0.45, 0.6), pt(0.45, 2.5), pt(-0.45, 2.5)], fill=_shade(skin, 0.85))  # neck
    for s in (-1, 1):  # ears
        draw.polygon(oval(s * 1.0 - 0.1, -0.25, s * 1.0 + 0.1, 0.12), fill=_shade(skin, 0.92))
    draw.polygon(oval(-1, -1, 1, 1), fill=_shade(skin, 1.0))
    if rng.random() < 0.85:  # hair cap down to the hairline
        hairline = rng.uniform(-0.8, -0.45)
        top = -1.12
        draw.polygon(oval(-1.06, top, 1.06, 2 * hairline - top, upper_half=True), fill=hair)

    crease = _shade(skin, 0.7)
    # forehead lines when the brows go up (AU1+2)
    if p["brow_raise"] > 0.35:
        alpha = int(min(1.0, p["brow_raise"] - 0.3) * 150)
        for k in range(3):
            y = -0.62 + 0.08 * k
            draw.line(_bezier(pt(-0.35, y), pt(0.35, y), pt(0, y - 0.04)), fill=(*crease, alpha), width=px(0.015))

    # eyes
    eye_y = -0.12 + rng.normal(0, 0.02)
    eye_dx = 0.38 + rng.normal(0, 0.02)
    ew = 0.21
    up = 0.085 * float(np.clip(1 + 1.2 * p["eye_open"] - 0.25 * p["squint"], 0.15, 2.2))
    lo = 0.065 * float(np.clip(1 + 0.5 * p["eye_open"] - 0.9 * p["squint"], 0.15, 2.0))
    iris = _shade(_HAIR[int(rng.integers(3))], rng.uniform(0.6, 1.6))
    gaze = rng.normal(0, 0.25)
    for s in (-1, 1):
        ex = s * eye_dx
        us = [k / 4 - 1 for k in range(9)]  # -1 .. 1
        upper = [pt(ex + ew * u, eye_y - up * (1 - u * u)) for u in us]
        lower = [pt(ex + ew * u, eye_y + lo * (1 - u * u)) for u in us]
        draw.polygon(upper + lower[::-1], fill=_shade((238, 236, 230), rng.uniform(0.85, 1.0)))
        ir = min(0.07 * a, (up + lo) * b / 2)
        ix, iy = pt(ex + gaze * ew * 0.35, eye_y + (lo - up) / 2)
        draw.ellipse((ix - 0.07 * a, iy - ir, ix + 0.07 * a, iy + ir), fill=iris)
        pr = ir * 0.45
        draw.ellipse((ix - pr, iy - pr, ix + pr, iy + pr), fill=(10, 10, 12))
        draw.line(upper, fill=(30, 25, 25), width=px(0.02), joint="curve")
        crease_pts = [pt(ex + ew * u, eye_y - up * (1 - u * u) - 0.045) for u in us[1:-1]]
        draw.line(crease_pts, fill=(*crease, 110), width=px(0.01))
        if p["squint"] > 0.3:  # raised cheek: lower lid fold
            low_pts = [pt(ex + ew * u, eye_y + lo * (1 - u * u) + 0.04) for u in us[2:-2]]
            draw.line(low_pts, fill=(*crease, int(min(1.0, p["squint"]) * 120)), width=px(0.012))

    # brows
    brow_y = eye_y - 0.21 - 0.18 * p["brow_raise"] + rng.normal(0, 0.015)
    brow_w = px(0.08 * rng.uniform(0.85, 1.2))
    brow_col = _shade(hair, 0.45)
    inner_x = 0.16 - 0.06 * min(p["brow_knit"], 1.2)
    for s in (-1, 1):
        inner = pt(s * inner_x, brow_y - 0.14 * p["brow_inner"] + 0.02)
        mid = pt(s * 0.4, brow_y - 0.035)
        outer = pt(s * 0.62, brow_y + 0.02)
        draw.line([inner, mid, outer], fill=brow_col, width=brow_w, joint="curve")
    if p["brow_knit"] > 0.15:  # glabella furrows (AU4)
        alpha = int(min(1.0, p["brow_knit"]) * 170)
        for s in (-1, 1):
            draw.line([pt(s * 0.04, brow_y - 0.02), pt(s * 0.05, brow_y + 0.1)], fill=(*crease, alpha), width=px(0.015))

    # nose
    nose_y = 0.27 + rng.normal(0, 0.02)
    draw.line([pt(0.05, -0.05), pt(0.08, nose_y - 0.07)], fill=(*crease, 90), width=px(0.015))
    flare = 1 + 0.5 * p["nose_wrinkle"]
    for s in (-1, 1):
        draw.polygon(oval(s * 0.075 - 0.035 * flare, nose_y - 0.015, s * 0.075 + 0.035 * flare, nose_y + 0.015),
                     fill=_shade(skin, 0.45))
    draw.line(_bezier(pt(-0.14 * flare, nose_y - 0.02), pt(0.14 * flare, nose_y - 0.02), pt(0, nose_y + 0.035)),
              fill=(*crease, 100), width=px(0.012))
    if p["nose_wrinkle"] > 0.15:  # AU9 wrinkles across the bridge
        alpha = int(min(1.0, p["nose_wrinkle"]) * 190)
        for k in range(3):
            y = -0.03 + 0.045 * k
            draw.line(_bezier(pt(-0.09, y + 0.01), pt(0.09, y + 0.01), pt(0, y - 0.015)),
                      fill=(*crease, alpha), width=px(0.014))

    # nasolabial folds: deeper with smiles (AU12) and disgust (AU9/10)
    fold = min(1.0, 0.2 + 0.6 * max(0.0, p["mouth_curve"]) + 0.7 * p["nose_wrinkle"] + 0.4 * p["lip_raise"])
    for s in (-1, 1):
        draw.line(_bezier(pt(s * 0.17, nose_y - 0.04), pt(s * 0.36, 0.58), pt(s * 0.29, 0.36)),
                  fill=(*crease, int(fold * 130)), width=px(0.014))

    # mouth
    my = 0.55 + rng.normal(0, 0.025) - 0.06 * p["lip_raise"]
    mw = 0.34 * (1 + 0.35 * p["mouth_stretch"]) * rng.uniform(0.9, 1.1)
    side = -1 if rng.random() < 0.5 else 1  # the smirking corner
    corner_y = {s: my - 0.22 * p["mouth_curve"] - (0.24 * p["smirk"] if s == side else 0.0) for s in (-1, 1)}
    left, right = pt(-mw, corner_y[-1]), pt(mw, corner_y[1])
    opening = 0.36 * p["mouth_open"]
    upper_mid = pt(0, my - 0.05 * p["lip_raise"])
    lower_mid = pt(0, my + opening)
    lip_u = 0.045 * (1 - 0.7 * min(p["lip_press"], 1.0)) * rng.uniform(0.8, 1.2)
    lip_l = lip_u * 1.3
    upper = _bezier(left, right, upper_mid)
    lower = _bezier(left, right, lower_mid)
    outer_u = _bezier(left, right, pt(0, my - 0.05 * p["lip_raise"] - lip_u))
    outer_l = _bezier(left, right, pt(0, my + opening + lip_l))
    draw.polygon(outer_u + outer_l[::-1], fill=lip)
    if opening > 0.03:
        draw.polygon(upper + lower[::-1], fill=(55, 18, 25))
        if teeth:
            band = min(opening * 0.5, 0.08)
            teeth_lo = _bezier(left, right, pt(0, my - 0.05 * p["lip_raise"] + band))
            draw.polygon(upper + teeth_lo[::-1], fill=(236, 234, 222))
    draw.line(upper, fill=_shade(lip, 0.4), width=px(0.018), joint="curve")
    if p["smirk"] > 0.25:  # dimple at the raised corner
        corner_x = mw if side > 0 else -mw
        draw.line([pt(corner_x + side * 0.02, corner_y[side] - 0.04), pt(corner_x + side * 0.045, corner_y[side] + 0.03)],
                  fill=(*crease, int(min(1.0, p["smirk"]) * 150)), width=px(0.012))


def _occlude(rng: np.random.Generator, img: Image.Image) -> None:
    """Draw a bar (glasses, a scarf) or a blob (a hand) over part of the face, in place."""
    w = img.width
    draw = ImageDraw.Draw(img)
    color = _shade(rng.uniform(20, 235, 3), 1.0)
    if rng.random() < 0.5:
        y, h = rng.uniform(0.3, 0.8) * w, rng.uniform(0.06, 0.14) * w
        angle = rng.normal(0, 0.15)
        x0, x1 = rng.uniform(0, 0.3) * w, rng.uniform(0.7, 1.0) * w
        dy = (x1 - x0) * math.tan(angle)
        draw.polygon([(x0, y), (x1, y + dy), (x1, y + dy + h), (x0, y + h)], fill=color)
    else:
        x, y = rng.uniform(0.2, 0.8, 2) * w
        r = rng.uniform(0.1, 0.18) * w
        draw.ellipse((x - r, y - r * 0.8, x + r, y + r * 0.8), fill=color)


def _render_face(label: str, rng: np.random.Generator, size: int) -> tuple[Image.Image, float, float]:
    """One ``size x size`` RGB face of ``label``; returns (image, valence, arousal)."""
    w = size * _SS
    intensity = float(rng.uniform(0.4, 1.0))
    expr = _EXPRESSIONS[label]
    params = _expression_params(label, intensity, rng)
    img = _background(rng, w)
    _draw_face(img, rng, params, expr.teeth)
    if rng.random() < 0.1:
        _occlude(rng, img)
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    if rng.random() < 0.25:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7) * size / 64))
    arr = np.asarray(img, dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1) - 0.5
    theta = rng.uniform(0, 2 * np.pi)
    light = rng.uniform(0.85, 1.1) * (1 + rng.uniform(0, 0.35) * (np.cos(theta) * xx + np.sin(theta) * yy))
    arr = arr * light[..., None] * rng.normal(1.0, 0.06, 3)
    arr += rng.normal(0, rng.uniform(1, 5), arr.shape)
    out = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "RGB")

    anchor = np.array(CIRCUMPLEX[label])
    va = intensity * anchor + rng.normal(0, 0.06 if label == "neutral" else 0.05, 2)
    valence, arousal = (float(v) for v in np.clip(va, -1, 1))
    return out, valence, arousal


def generate_faces(
    out_dir: str | os.PathLike,
    per_class: int = PER_CLASS,
    size: int = SIZE,
    seed: int = SEED,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
) -> DatasetIndex:
    """Draw ``per_class`` RGB faces of ``size x size`` px for each of the 8 AffectNet classes.

    Writes ``out_dir/<class>/<class>_00001.png`` and ``out_dir/index.csv`` (+ sidecar) with
    stratified, seeded train/val/test splits and per-image ``valence``/``arousal`` in [-1, 1]
    (the class's circumplex point scaled by the drawn expression intensity, plus jitter).
    Returns the written index.
    """
    check_settings(per_class, size, val_fraction, test_fraction)

    def render(label: str, rng: np.random.Generator) -> tuple[Image.Image, float, float]:
        return _render_face(label, rng, size)

    return write_dataset(out_dir, "faces", FACE_CLASSES, range(len(FACE_CLASSES)), per_class, seed,
                         val_fraction, test_fraction, render, "synthetic-faces", size)
