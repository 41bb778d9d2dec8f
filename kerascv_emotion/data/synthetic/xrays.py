"""Synthetic chest X-rays: normal, COVID (faint, bilateral, peripheral ground-glass) and viral
pneumonia (one dense, focal consolidation), drawn as blurred masks of the thorax's anatomy."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

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
from kerascv_emotion.errors import ConfigError

XRAY_CLASSES = ("normal", "covid", "viral_pneumonia")


def _mask(w: int, draw_fn: Callable[[ImageDraw.ImageDraw], None], blur: float) -> np.ndarray:
    """Run ``draw_fn`` on a black ``L`` canvas, blur by ``blur`` px; float32 ``(w, w)`` in [0, 1]."""
    img = Image.new("L", (w, w), 0)
    draw_fn(ImageDraw.Draw(img))
    if blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(img, dtype=np.float32) / 255.0


def _smooth_noise(rng: np.random.Generator, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1], float32 ``(w, w)``, about ``cells`` blobs across."""
    coarse = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8), "L")
    return np.asarray(coarse.resize((w, w), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0


def _render_xray(label: str, rng: np.random.Generator, size: int) -> Image.Image:
    """One ``size x size`` grayscale (``L``) chest X-ray of ``label``.

    Drawn at the output size: every structure is blurred, which anti-aliases it.
    """
    w = size
    cx = w * (0.5 + rng.normal(0, 0.02))
    apex = w * rng.uniform(0.1, 0.18)
    base = w * rng.uniform(0.74, 0.86)
    dome = w * rng.uniform(0.07, 0.13)
    med = w * rng.uniform(0.05, 0.075)  # half-width of the mediastinum
    lat = {s: w * rng.uniform(0.27, 0.34) for s in (-1, 1)}  # lateral lung edge from the midline
    lift = {-1: w * rng.uniform(0.01, 0.05), 1: 0.0}  # the right hemidiaphragm (image left) sits higher

    def jitter(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(x + rng.normal(0, 0.008 * w), y + rng.normal(0, 0.008 * w)) for x, y in points]

    def lung_outline(s: int) -> list[tuple[float, float]]:
        b, lw = base - lift[s], lat[s]
        return jitter([
            (cx + s * (med + 0.07 * w), apex), (cx + s * lw * 0.72, apex + 0.05 * w),
            (cx + s * lw * 0.93, apex + 0.2 * w), (cx + s * lw, b - 0.15 * w), (cx + s * lw * 0.97, b),
            (cx + s * lw * 0.72, b - dome * 0.75), (cx + s * lw * 0.45, b - dome),
            (cx + s * (med + 0.03 * w), b - dome * 0.7), (cx + s * med, b - dome - 0.06 * w),
            (cx + s * med, apex + 0.15 * w), (cx + s * (med + 0.03 * w), apex + 0.04 * w),
        ])

    outlines = {s: lung_outline(s) for s in (-1, 1)}
    lungs = {s: _mask(w, lambda d, s=s: d.polygon(outlines[s], fill=255), 0.012 * w) for s in (-1, 1)}
    lung = np.clip(lungs[-1] + lungs[1], 0, 1)
    yy, xx = np.mgrid[0:w, 0:w].astype(np.float32) / w

    # body: neck, shoulders and torso over air
    sh_y, half = w * rng.uniform(0.02, 0.1), w * rng.uniform(0.38, 0.47)
    body = _mask(w, lambda d: d.polygon(jitter([
        (cx - 0.08 * w, -1), (cx + 0.08 * w, -1), (cx + 0.12 * w, sh_y), (cx + half, sh_y + 0.08 * w),
        (cx + half + 0.03 * w, w), (cx - half - 0.03 * w, w), (cx - half, sh_y + 0.08 * w),
        (cx - 0.12 * w, sh_y)]), fill=255), 0.02 * w)
    img = 0.08 + body * rng.uniform(0.42, 0.55)

    # lungs: darker towards the bases, with vessels fanning out of the hila
    img -= lung * rng.uniform(0.26, 0.36) * (0.8 + 0.35 * (yy - apex / w))

    def vessels(d: ImageDraw.ImageDraw) -> None:
        for s in (-1, 1):
            hx, hy = cx + s * (med + 0.05 * w), (apex + base) / 2 - 0.03 * w
            for _ in range(int(rng.integers(6, 10))):
                ang = np.pi / 2 - s * rng.uniform(-0.2, 2.6) * np.pi / 2  # towards the side and up/down
                x, y, width = hx, hy, 0.018 * w
                for _ in range(4):
                    nx = x + np.cos(ang) * 0.07 * w
                    ny = y + np.sin(ang) * 0.07 * w
                    d.line([(x, y), (nx, ny)], fill=255, width=max(1, int(width)))
                    x, y, width = nx, ny, width * 0.6
                    ang += rng.normal(0, 0.35)

    img += _mask(w, vessels, 0.01 * w) * lung * rng.uniform(0.06, 0.12)

    # hila, mediastinum, heart, spine, trachea
    mid_y = (apex + base) / 2

    def hila(d: ImageDraw.ImageDraw) -> None:
        for s in (-1, 1):
            hx = cx + s * (med + 0.05 * w)
            d.ellipse((hx - 0.04 * w, mid_y - 0.09 * w, hx + 0.04 * w, mid_y + 0.02 * w), fill=255)

    def spine(d: ImageDraw.ImageDraw) -> None:
        for y in np.arange(-0.02 * w, w, 0.055 * w):
            d.rectangle((cx - 0.035 * w, y, cx + 0.035 * w, y + 0.045 * w), fill=255)

    img += _mask(w, hila, 0.02 * w) * 0.08
    img += _mask(w, lambda d: d.rectangle((cx - med, 0, cx + med, w), fill=255), 0.015 * w) * 0.04
    thorax = lat[-1] + lat[1]
    heart_w = thorax * rng.uniform(0.38, 0.52)
    h_bottom = base - dome * 0.6
    h_top = h_bottom - w * rng.uniform(0.22, 0.3)
    heart = _mask(w, lambda d: d.ellipse((cx - heart_w * 0.38, h_top, cx + heart_w * 0.62, h_bottom + 0.06 * w),
                                         fill=255), 0.015 * w)
    soft = float(img[min(int(base + 0.05 * w), w - 1), int(cx)])  # the abdomen's level
    img = img * (1 - heart) + heart * (soft + rng.uniform(0.02, 0.08))
    aerated = lung * (1 - 0.8 * heart)  # where a lung opacity shows: lung not behind the heart
    img += _mask(w, spine, 0.004 * w) * rng.uniform(0.04, 0.1)
    trachea = _mask(w, lambda d: d.rectangle((cx - 0.018 * w, 0, cx + 0.018 * w, apex + 0.18 * w), fill=255), 0.01 * w)
    img -= trachea * rng.uniform(0.08, 0.15)
    if rng.random() < 0.5:  # gastric bubble under the left hemidiaphragm (image right)
        gx, gy = cx + lat[1] * 0.45, base + 0.03 * w
        img -= _mask(w, lambda d: d.ellipse((gx - 0.06 * w, gy - 0.02 * w, gx + 0.06 * w, gy + 0.05 * w),
                                            fill=255), 0.01 * w) * 0.15

    # ribs and clavicles
    spacing = (base - apex) / rng.uniform(8.0, 9.5)
    ts = np.linspace(0, 1, 8)

    def ribs(d: ImageDraw.ImageDraw) -> None:
        for s in (-1, 1):
            for k in range(10):
                y0 = apex - 0.03 * w + k * spacing
                pts = [(cx + s * (0.04 * w + t * lat[s] * 1.08),
                        y0 - 0.06 * w * math.sin(math.pi * t * 0.7) + 0.14 * w * t * t)
                       for t in ts]
                d.line(pts, fill=255, width=max(1, int(0.022 * w)), joint="curve")
            d.line([(cx + s * 0.05 * w, apex + 0.03 * w), (cx + s * 0.32 * w, apex - 0.04 * w)],
                   fill=255, width=max(1, int(0.03 * w)))

    img += _mask(w, ribs, 0.01 * w) * rng.uniform(0.05, 0.1)

    if rng.random() < 0.35:  # breast shadows over the lower lateral zones (a COVID look-alike)
        def breasts(d: ImageDraw.ImageDraw) -> None:
            for s in (-1, 1):
                bx, by, r = cx + s * lat[s] * 0.65, base - 0.06 * w, 0.17 * w
                d.ellipse((bx - r, by - r * 0.8, bx + r, by + r * 0.8), fill=255)
        img += _mask(w, breasts, 0.06 * w) * body * rng.uniform(0.03, 0.09)

    # findings
    if label == "covid":
        sides = (-1, 1) if rng.random() < 0.85 else (int(rng.choice([-1, 1])),)

        def ggo(d: ImageDraw.ImageDraw) -> None:
            for s in sides:
                b = base - lift[s]
                for _ in range(int(rng.integers(3, 7))):
                    x = cx + s * (lat[s] - rng.uniform(0.03, 0.12) * w)
                    y = rng.uniform(apex + 0.45 * (b - apex), b - 0.02 * w)
                    rx, ry = rng.uniform(0.05, 0.12, 2) * w
                    d.ellipse((x - rx, y - ry, x + rx, y + ry), fill=int(rng.uniform(120, 255)))

        lesion = _mask(w, ggo, rng.uniform(0.03, 0.05) * w) * (0.4 + 0.6 * _smooth_noise(rng, w, 7))
        img += lesion * aerated * rng.uniform(0.12, 0.36)
    elif label == "viral_pneumonia":
        s = int(rng.choice([-1, 1]))
        b = base - lift[s]
        zone = rng.choice(["upper", "middle", "lower"])
        frac = {"upper": (0.1, 0.35), "middle": (0.35, 0.6), "lower": (0.6, 0.9)}[zone]
        ccx = cx + s * (med + rng.uniform(0.3, 0.8) * (lat[s] - med))
        ccy = apex + rng.uniform(*frac) * (b - apex)

        def consolidation(d: ImageDraw.ImageDraw) -> None:
            for _ in range(int(rng.integers(3, 6))):
                x, y = ccx + rng.normal(0, 0.04 * w), ccy + rng.normal(0, 0.03 * w)
                rx, ry = rng.uniform(0.04, 0.09, 2) * w
                d.ellipse((x - rx, y - ry, x + rx, y + ry), fill=255)

        lesion = _mask(w, consolidation, rng.uniform(0.012, 0.025) * w)
        if zone == "upper" and rng.random() < 0.5:  # sharp lower edge along the fissure
            lesion = lesion * (yy < (ccy + 0.04 * w) / w)
        img += lesion * lungs[s] * (1 - 0.8 * heart) * rng.uniform(0.2, 0.4)

    # exposure, contrast, heel effect, noise, a side marker, then patient pose
    lo, hi = rng.uniform(-0.05, 0.08), rng.uniform(0.72, 0.95)
    img = np.clip((img - lo) / (hi - lo), 0, 1) ** rng.uniform(0.7, 1.4)
    img *= 1 + rng.uniform(-0.15, 0.15) * (xx - 0.5) + rng.uniform(-0.1, 0.1) * (yy - 0.5)
    img += (_smooth_noise(rng, w, 5) - 0.5) * rng.uniform(0.0, 0.08)
    out = Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8), "L")
    if rng.random() < 0.5:
        mx = rng.choice([0.06, 0.86]) * w
        ImageDraw.Draw(out).rectangle((mx, 0.05 * w, mx + 0.07 * w, 0.13 * w), fill=int(rng.uniform(200, 255)))
    zoom = rng.uniform(1.0, 1.12)  # crop in: the thorax fills more or less of the frame
    out = out.rotate(float(rng.normal(0, 3)), resample=Image.Resampling.BICUBIC,
                     translate=tuple(float(v) for v in rng.normal(0, 0.03 * w, 2)), fillcolor=int(out.getpixel((0, w - 1))))
    crop = w * (1 - 1 / zoom) / 2
    out = out.resize((size, size), Image.Resampling.LANCZOS, box=(crop, crop, w - crop, w - crop))
    if rng.random() < 0.4:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8) * size / 64))
    arr = np.asarray(out, dtype=np.float32) + rng.normal(0, rng.uniform(2, 9), (size, size))
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "L")


def generate_xrays(
    out_dir: str | os.PathLike,
    per_class: int = PER_CLASS,
    size: int = SIZE,
    seed: int = SEED,
    classes: Sequence[str] = XRAY_CLASSES[:2],
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
) -> DatasetIndex:
    """Draw ``per_class`` grayscale (``L``) chest X-rays of ``size x size`` px per class.

    ``classes`` is an ordered subset of ``normal``, ``covid`` (bilateral, peripheral,
    lower-zone ground-glass opacities, often faint) and ``viral_pneumonia`` (one dense,
    focal consolidation). Writes ``out_dir/<class>/<class>_00001.png`` and
    ``out_dir/index.csv`` (+ sidecar); returns the written index.
    """
    classes = list(classes)
    unknown = [c for c in classes if c not in XRAY_CLASSES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ConfigError(f"X-ray classes {classes}: list each of {list(XRAY_CLASSES)} at most once, at least one")
    check_settings(per_class, size, val_fraction, test_fraction)

    def render(label: str, rng: np.random.Generator) -> tuple[Image.Image, None, None]:
        return _render_xray(label, rng, size), None, None

    return write_dataset(out_dir, "xrays", classes, [XRAY_CLASSES.index(c) for c in classes], per_class,
                         seed, val_fraction, test_fraction, render, "synthetic-xrays", size)
