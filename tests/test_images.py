"""load_image: mode conversions, EXIF, face boxes, sizes; every bad-image case under both policies."""

from __future__ import annotations

import io
import logging
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerascv_emotion.data.cache import load_split
from kerascv_emotion.data.images import load_image
from kerascv_emotion.data.index import DatasetIndex, IndexRecord, SplitOptions
from kerascv_emotion.data.readers.folders import read_folders
from kerascv_emotion.errors import BadImageError, ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _rgb(h: int = 16, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- bad-image fixtures
def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_rgb(32, 32)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_rgb(32, 32)).save(buf, "PNG")
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png() -> bytes:
    """A valid PNG header claiming 100000 x 100000 pixels (10 gigapixels), with no pixel data."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def _write(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _tiny(path: Path) -> None:
    Image.new("RGB", (1, 1), (200, 10, 10)).save(path)


BAD_CASES: dict[str, tuple[str, Callable[[Path], None], str]] = {
    # name: (file name, writer, expected words in the reason)
    "zero_byte": ("empty.jpg", _write(b""), "empty file"),
    "truncated_jpeg": ("cut.jpg", _write(_jpeg_bytes()[:300]), "truncated"),
    "truncated_png": ("cut.png", _write(_png_bytes()[:200]), "truncated"),
    "not_an_image": ("notes.png", _write(b"this is a text file, not a picture\n" * 4), "not a recognised image"),
    "one_pixel": ("dot.png", _tiny, "smaller than min_size"),
    "decompression_bomb": ("bomb.png", _write(_bomb_png()), "decompression bomb"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_image_raises_bad_image_error(tmp_path: Path, case: str) -> None:
    name, writer, reason = BAD_CASES[case]
    path = tmp_path / name
    writer(path)
    with pytest.raises(BadImageError) as info:
        load_image(path, 16)
    assert info.value.path == str(path)
    assert reason in info.value.reason
    assert "\n" not in str(info.value)


def _dataset_with(tmp_path: Path, bad_name: str, writer: Callable[[Path], None]) -> DatasetIndex:
    """Two classes with two good PNGs each; one bad file in class ``a``; every row in train."""
    root = tmp_path / "ds"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(_rgb(seed=i)).save(root / c / f"ok{i}.png")
    writer(root / "a" / bad_name)
    return read_folders(root, SplitOptions(val_fraction=0, test_fraction=0))


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_image_policies_through_load_split(tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture) -> None:
    name, writer, reason = BAD_CASES[case]
    index = _dataset_with(tmp_path, name, writer)
    cache = tmp_path / "cache"
    with caplog.at_level(logging.WARNING, logger="kerascv_emotion.data.cache"):
        cached = load_split(index, "train", 16, cache_dir=cache, progress=False)
    assert len(cached) == 4 and cached.images.shape == (4, 16, 16, 3)
    assert f"a/{name}" not in cached.paths
    assert [s["path"] for s in cached.skipped] == [f"a/{name}"]
    assert reason in cached.skipped[0]["reason"]
    assert f"a/{name}" in caplog.text
    assert sorted(cached.label_ids.tolist()) == [0, 0, 1, 1]
    with pytest.raises(BadImageError, match=name):
        load_split(index, "train", 16, cache_dir=tmp_path / "other", on_bad_image="fail", progress=False)


def test_one_pixel_image_accepted_when_min_size_allows(tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    _tiny(path)
    out = load_image(path, 8, min_size=1)
    assert out.shape == (8, 8, 3)
    assert (out == np.array([200, 10, 10], dtype=np.uint8)).all()


def test_max_pixels_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(_rgb(32, 32)).save(path)
    assert load_image(path, 8, max_pixels=32 * 32).shape == (8, 8, 3)
    with pytest.raises(BadImageError, match="decompression bomb"):
        load_image(path, 8, max_pixels=32 * 32 - 1)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadImageError, match="file not found"):
        load_image(tmp_path / "nope.png", 8)


def test_stray_text_file_skipped_by_folder_reader(tmp_path: Path) -> None:
    index = _dataset_with(tmp_path, "README.txt", _write(b"notes"))
    assert all(r.path != "a/README.txt" for r in index.records)
    assert index.meta["skipped"] == [{"path": "a/README.txt", "reason": "not an image extension (.txt)"}]
    cached = load_split(index, "train", 8, cache_dir=tmp_path / "cache", on_bad_image="fail", progress=False)
    assert len(cached) == 4 and cached.skipped == []


def test_index_paths_escaping_root_rejected(tmp_path: Path) -> None:
    csv_path = tmp_path / "index.csv"
    csv_path.write_text("path,split,label\n../outside.png,train,a\n", encoding="utf-8")
    (tmp_path / "index.meta.json").write_text('{"root": ".", "class_names": ["a"]}', encoding="utf-8")
    with pytest.raises(DataError, match="escapes the dataset root"):
        load_split(csv_path, "train", 8, cache_dir=tmp_path / "c", progress=False)
    csv_path.write_text("path,split,label\n/etc/passwd.png,train,a\n", encoding="utf-8")
    with pytest.raises(DataError, match="absolute"):
        load_split(csv_path, "train", 8, cache_dir=tmp_path / "c", progress=False)


# ---------------------------------------------------------------- mode conversions
def _save(tmp_path: Path, img: Image.Image, name: str, **kwargs: object) -> Path:
    path = tmp_path / name
    img.save(path, **kwargs)
    return path


def test_rgb_roundtrip_exact_without_resize(tmp_path: Path) -> None:
    arr = _rgb(12, 10)
    path = _save(tmp_path, Image.fromarray(arr), "x.png")
    out = load_image(path, (12, 10))
    assert out.dtype == np.uint8 and out.shape == (12, 10, 3)
    np.testing.assert_array_equal(out, arr)
    gray = load_image(path, (12, 10), channels=1)
    assert gray.shape == (12, 10, 1)
    np.testing.assert_array_equal(gray[..., 0], np.asarray(Image.fromarray(arr).convert("L")))


def test_grayscale_to_rgb_replicates(tmp_path: Path) -> None:
    arr = _rgb(8, 8)[..., 0]
    path = _save(tmp_path, Image.fromarray(arr, mode="L"), "g.png")
    out = load_image(path, 8)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], arr)
    np.testing.assert_array_equal(load_image(path, 8, channels=1)[..., 0], arr)


def test_la_and_rgba_composited_over_black(tmp_path: Path) -> None:
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., :3] = 200
    rgba[:4, :, 3] = 255  # top half opaque, bottom half transparent
    out = load_image(_save(tmp_path, Image.fromarray(rgba, mode="RGBA"), "a.png"), 8)
    assert (out[:4] == 200).all() and (out[4:] == 0).all()
    la = Image.fromarray(rgba[..., [0, 3]], mode="LA")
    out = load_image(_save(tmp_path, la, "la.png"), 8)
    assert (out[:4] == 200).all() and (out[4:] == 0).all()


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.paste(0, (0, 0, 8, 4))  # top half index 0 (red), bottom index 1 (green)
    out = load_image(_save(tmp_path, pal, "p.png"), 8)
    assert (out[:4] == [255, 0, 0]).all() and (out[4:] == [0, 255, 0]).all()
    out = load_image(_save(tmp_path, pal, "pt.png", transparency=0), 8)
    assert (out[:4] == 0).all(), "transparent palette entry must be composited over black"
    assert (out[4:] == [0, 255, 0]).all()


def test_cmyk_jpeg(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    path = _save(tmp_path, cmyk, "c.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    out = load_image(path, 16)
    assert out.shape == (16, 16, 3)
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), [255, 0, 0], atol=8)


def test_sixteen_bit_png_scaled_not_clipped(tmp_path: Path) -> None:
    arr = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    path = _save(tmp_path, Image.fromarray(arr), "d.png")
    assert Image.open(path).mode == "I;16"
    out = load_image(path, 8, channels=1)[..., 0]
    np.testing.assert_array_equal(out, np.rint(arr / 257.0).astype(np.uint8))
    assert out.max() == 255 and 0 < np.median(out) < 255


def test_thirty_two_bit_integer_treated_as_sixteen_bit(tmp_path: Path) -> None:
    arr = np.linspace(-100, 70000, 64).astype(np.int32).reshape(8, 8)
    path = _save(tmp_path, Image.fromarray(arr), "i.tif")
    assert Image.open(path).mode == "I"
    out = load_image(path, 8, channels=1)[..., 0]
    np.testing.assert_array_equal(out, np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8))


def test_float_bilevel_and_gray_transparency(tmp_path: Path) -> None:
    arr = np.linspace(-10.0, 300.0, 64, dtype=np.float32).reshape(8, 8)
    path = _save(tmp_path, Image.fromarray(arr), "f.tif")
    assert Image.open(path).mode == "F"
    np.testing.assert_array_equal(load_image(path, 8, channels=1)[..., 0], np.clip(np.rint(arr), 0, 255))
    bits = np.zeros((8, 8), dtype=bool)
    bits[:, :4] = True
    path = _save(tmp_path, Image.fromarray(bits), "b.png")
    assert Image.open(path).mode == "1"
    np.testing.assert_array_equal(load_image(path, 8)[..., 1], bits * np.uint8(255))
    gray = np.full((8, 8), 100, dtype=np.uint8)
    gray[:4] = 200
    out = load_image(_save(tmp_path, Image.fromarray(gray), "t.png", transparency=200), 8)
    assert (out[:4] == 0).all() and (out[4:] == 100).all()


def test_exif_orientation_applied(tmp_path: Path) -> None:
    stored = np.zeros((8, 16, 3), dtype=np.uint8)  # 16 wide, 8 tall
    stored[:, :8] = (255, 0, 0)  # left half red
    stored[:, 8:] = (0, 0, 255)  # right half blue
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = _save(tmp_path, img, "r.jpg", exif=exif, quality=95)
    out = load_image(path, (16, 8)).astype(int)  # upright: 8 wide, 16 tall
    assert out.shape == (16, 8, 3)
    assert out[:6, :, 0].mean() > 200 and out[:6, :, 2].mean() < 50  # red on top
    assert out[10:, :, 2].mean() > 200 and out[10:, :, 0].mean() < 50  # blue below


def test_face_box_crop_and_clipping(tmp_path: Path) -> None:
    arr = _rgb(20, 30)
    path = _save(tmp_path, Image.fromarray(arr), "f.png")
    np.testing.assert_array_equal(load_image(path, (10, 8), face_box=(5, 2, 8, 10)), arr[2:12, 5:13])
    # a box reaching past the right/bottom edges is clipped to the image
    np.testing.assert_array_equal(load_image(path, (8, 10), face_box=(20, 12, 50, 50)), arr[12:20, 20:30])
    with pytest.raises(BadImageError, match="outside"):
        load_image(path, 8, face_box=(40, 0, 10, 10))
    with pytest.raises(BadImageError, match="face box is 4x4"):
        load_image(path, 8, face_box=(0, 0, 4, 4))


def test_resize_and_bad_settings(tmp_path: Path) -> None:
    path = _save(tmp_path, Image.fromarray(_rgb(40, 20)), "s.png")
    assert load_image(path, 16).shape == (16, 16, 3)
    assert load_image(path, (12, 24)).shape == (12, 24, 3)
    with pytest.raises(ConfigError, match="channels"):
        load_image(path, 16, channels=2)
    with pytest.raises(ConfigError, match="image_size"):
        load_image(path, (16, 0))


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data")
def test_real_xrays_mixed_formats(tmp_path: Path) -> None:
    full = read_folders(SHARED / "covid-xray", SplitOptions(val_fraction=0, test_fraction=0))
    picks: list[IndexRecord] = []
    for label in full.class_names:
        picks += [r for r in full.records if r.label == label][:2]
    index = full.with_records(picks)
    cached = load_split(index, "train", 32, cache_dir=tmp_path, on_bad_image="fail", progress=False)
    assert cached.images.shape == (len(picks), 32, 32, 3)
    assert cached.images.std() > 5  # real pictures, not blank
