"""Decode one image file into the model's input: uint8 ``(H, W, C)``.

Every image goes through the same steps, in this order:

1. refuse anything but a regular file (a FIFO would block the reader forever; a device or
   socket is no image), then open with Pillow (header only) and refuse sizes above
   ``max_pixels`` (decompression bombs: a small file that claims billions of pixels);
2. decode, apply the EXIF orientation (``ImageOps.exif_transpose``), so the picture is upright;
3. crop the face box ``(x, y, w, h)`` (pixels of the upright image), clipped to the image;
4. convert the mode to RGB (``channels=3``) or L (``channels=1``): palette and ``LA``/``RGBA``
   images with transparency are composited over black, CMYK is converted by Pillow, 16-bit
   (``I;16``, ``I``) images are scaled from 0..65535 to 0..255 (Pillow's own conversion
   would clip them), float (``F``) images are clipped to 0..255; these are converted a band
   of rows at a time, so a large 16-bit image costs its decoded size plus one byte a pixel;
5. refuse a region smaller than ``min_size`` pixels on a side (default 8: a 1x1 image is a
   broken download or placeholder, not a face; upscaling it would feed the model a flat patch);
6. resize (stretch, bilinear with Pillow's antialiasing) to ``size`` (at most
   :data:`MAX_IMAGE_SIDE` pixels a side).

Cropping before the mode conversion gives the same pixels as after it (every conversion
works pixel by pixel) and converts only the face.

Steps 1-2 are :func:`open_image`, 3-6 :func:`prepare_image`; :func:`load_image` runs both
(prediction detects faces on the upright image between them).

Any failure raises :class:`kerascv_emotion.errors.BadImageError` (path + reason).
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
import zlib
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from kerascv_emotion.errors import BadImageError, ConfigError

DEFAULT_MIN_SIZE = 8
MAX_IMAGE_SIDE = 1024
"""Largest ``image_size`` (pixels a side) a model may take; also the workflow schema's maximum."""
MAX_PIXELS_OPTION = "--max-image-pixels"
"""The CLI option that sets ``max_pixels`` (named in the error message)."""
_ROWS_PER_BAND = 256  # rows of a 16-bit or float image converted at a time
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
# errors Pillow and its codecs raise for corrupt or truncated data
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)


def image_size_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """``64`` -> ``(64, 64)``; ``(h, w)`` -> ``(h, w)``; raises ConfigError for bad values."""
    hw = (size, size) if isinstance(size, int | np.integer) else tuple(size)
    if len(hw) != 2 or not all(isinstance(v, int | np.integer) and v > 0 for v in hw):
        raise ConfigError(f"image_size={size!r}: give one positive int or (height, width)")
    if max(hw) > MAX_IMAGE_SIDE:
        raise ConfigError(f"image_size={size!r}: at most {MAX_IMAGE_SIDE} pixels a side")
    return int(hw[0]), int(hw[1])


def check_channels(channels: int) -> int:
    """Return ``channels`` if it is 1 or 3, else raise ConfigError."""
    if channels not in (1, 3):
        raise ConfigError(f"channels={channels!r}: use 3 (RGB) or 1 (grayscale)")
    return channels


def _to_8bit(img: Image.Image) -> Image.Image:
    """16/32-bit integer (taken as 0..65535) or float (taken as 0..255) modes -> ``L``,
    converted :data:`_ROWS_PER_BAND` rows at a time (a float64 copy of a whole large image
    would take 8 bytes a pixel, several times over)."""
    out = np.empty((img.height, img.width), dtype=np.uint8)
    for top in range(0, img.height, _ROWS_PER_BAND):
        bottom = min(top + _ROWS_PER_BAND, img.height)
        band = np.asarray(img.crop((0, top, img.width, bottom)), dtype=np.float64)
        if img.mode in _SIXTEEN_BIT_MODES:
            band = band / 257.0
        out[top:bottom] = np.clip(np.rint(band), 0, 255)
    return Image.fromarray(out)


def _flatten(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> ``RGB`` or ``L``; transparency is composited over black."""
    if img.mode in _SIXTEEN_BIT_MODES or img.mode == "F":
        return _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in ("L", "1") and "transparency" in img.info:
        img = img.convert("LA")
    if img.mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("L", "RGB"):
        return img
    if img.mode == "1":
        return img.convert("L")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _crop_box(img: Image.Image, face_box: Sequence[int], path: str) -> Image.Image:
    x, y, w, h = (int(v) for v in face_box)
    if w <= 0 or h <= 0:
        raise BadImageError(path, f"face box {tuple(face_box)} has a non-positive width or height")
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + w, img.width), min(y + h, img.height)
    if right <= left or bottom <= top:
        raise BadImageError(
            path, f"face box {tuple(face_box)} lies outside the {img.width}x{img.height} image"
        )
    return img.crop((left, top, right, bottom))


def _check_regular_file(name: str) -> None:
    """Raise BadImageError unless ``name`` is a regular file (following symlinks): opening a
    FIFO would wait for a writer forever. A directory keeps Pillow's own message."""
    mode = os.stat(name).st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")
    raise BadImageError(name, f"not a regular file: {kind}")


def _allow_in_pillow(limit: int | None) -> None:
    """Let ``limit`` through Pillow's own bomb check, which refuses twice its global
    ``Image.MAX_IMAGE_PIXELS`` on open: that global is raised (never lowered) to ``limit``;
    :func:`load_image` applies ``limit`` itself."""
    if limit is not None and Image.MAX_IMAGE_PIXELS is not None and limit > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limit


def open_image(path: str | os.PathLike, max_pixels: int | None = None) -> Image.Image:
    """Steps 1-2: the decoded, upright image of ``path`` (any Pillow mode).

    ``max_pixels``: refuse images with more pixels than this (default: Pillow's
    ``Image.MAX_IMAGE_PIXELS``, about 89 megapixels) before decoding them.
    Raises BadImageError for a missing, unreadable, non-regular, corrupt or too large image.
    """
    name = os.fspath(path)
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    _allow_in_pillow(limit)
    # the limit is checked below, with a counted skip naming the image: Pillow's own warning for
    # the same image would only repeat it, from inside site-packages (a filter, not
    # catch_warnings, which is not thread-safe and images decode in worker threads)
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    try:
        _check_regular_file(name)
        with Image.open(name) as img:
            n_pixels = img.width * img.height
            if limit is not None and n_pixels > limit:
                raise BadImageError(
                    name, f"image claims {img.width}x{img.height} = {n_pixels} pixels, above the "
                    f"limit of {limit} (possible decompression bomb); raise {MAX_PIXELS_OPTION} "
                    "(max_pixels) if it is genuine",
                )
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
    except BadImageError:
        raise
    except FileNotFoundError:
        raise BadImageError(name, "file not found") from None
    except (PermissionError, IsADirectoryError) as exc:
        raise BadImageError(name, f"cannot read the file ({exc.strerror})") from None
    except Image.DecompressionBombError as exc:
        raise BadImageError(name, f"possible decompression bomb ({exc}); raise {MAX_PIXELS_OPTION} "
                            "(max_pixels) if it is genuine") from None
    except UnidentifiedImageError:
        size_bytes = os.path.getsize(name)
        what = "empty file (0 bytes)" if size_bytes == 0 else f"not a recognised image format ({size_bytes} bytes)"
        raise BadImageError(name, what) from None
    except _DECODE_ERRORS as exc:
        raise BadImageError(name, f"truncated or corrupt image data ({exc})") from None
    return img  # decoded: usable after the file is closed


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Step 4 alone: any Pillow mode -> ``RGB`` (``channels=3``) or ``L`` (``channels=1``)."""
    flat = _flatten(img)
    target_mode = "L" if check_channels(channels) == 1 else "RGB"
    return flat if flat.mode == target_mode else flat.convert(target_mode)


def prepare_image(
    img: Image.Image,
    name: str,
    size: int | Sequence[int],
    channels: int = 3,
    face_box: Sequence[int] | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
) -> np.ndarray:
    """Steps 3-6 on an image from :func:`open_image`: uint8 ``(H, W, channels)``.

    ``name`` (the file) is only quoted in errors; see :func:`load_image` for the rest.
    """
    height, width = image_size_hw(size)
    flat = img
    if face_box is not None:
        flat = _crop_box(flat, face_box, name)
    flat = to_mode(flat, channels)
    if flat.width < min_size or flat.height < min_size:
        region = "face box" if face_box is not None else "image"
        raise BadImageError(
            name, f"{region} is {flat.width}x{flat.height}, smaller than min_size={min_size} px on a side"
        )
    if flat.size != (width, height):
        flat = flat.resize((width, height), Image.Resampling.BILINEAR)
    arr = np.asarray(flat, dtype=np.uint8)
    return arr[:, :, None] if channels == 1 else arr


def load_image(
    path: str | os.PathLike,
    size: int | Sequence[int],
    channels: int = 3,
    face_box: Sequence[int] | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Decode ``path`` to uint8 ``(H, W, channels)`` with ``(H, W)`` from ``size``
    (:func:`open_image`, then :func:`prepare_image`).

    ``face_box`` is ``(x, y, w, h)`` in pixels of the upright image; it is clipped to the image.
    ``min_size``: the (cropped) region must be at least this many pixels on both sides.
    ``max_pixels``: refuse images with more pixels than this (default: Pillow's
    ``Image.MAX_IMAGE_PIXELS``, about 89 megapixels) before decoding them.
    Raises BadImageError for a missing, unreadable, non-regular, corrupt, too large or too
    small image.
    """
    image_size_hw(size)
    check_channels(channels)
    return prepare_image(open_image(path, max_pixels), os.fspath(path), size, channels, face_box, min_size)
