"""Decode-once image cache: one uint8 ``.npy`` file per (index content, split, size, channels).

``load_split`` decodes every image of a split once (threads, both cores), writes the pixels
chunk by chunk into ``CACHE_DIR/<split>-<H>x<W>x<C>-<key>.npy`` and its record
``<same>.json`` (kept rows, skipped files with reasons), and afterwards only memory-maps
the file (``np.load(mmap_mode="r")``). The key hashes ``DatasetIndex.fingerprint()`` and
every decoding setting, so a changed index or size builds a new file and an unchanged one
is reused across runs and Snakemake jobs. The record also holds each row's source
``[size, mtime_ns]`` (``null`` for a file that was missing): an image replaced, removed or
restored since the build is decoded again when the split is next loaded (the unchanged
rows are copied from the old file, and one line says how many changed); ``refresh=True``
(``--refresh-cache``) decodes every image again. Each build writes a temporary file beside
the target and renames it into place (``os.replace``): two jobs building the same cache at
once both produce identical content and the last rename wins; nobody reads a half-written file.

Before a build, ``load_split`` refuses (one line) a cache that would not fit on the folder's
disk (rows x H x W x C bytes) and removes hidden temporary files older than
:data:`STALE_TEMP_SECONDS` that a killed build left behind (a younger one may belong to a
build in progress).

The cache folder is, in order: the ``cache_dir`` argument, the ``KERASCV_EMOTION_CACHE``
environment variable, ``<index folder>/.cache`` when ``load_split`` is given the index
CSV's path, else ``$XDG_CACHE_HOME/kerascv_emotion`` (``~/.cache/kerascv_emotion``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from kerascv_emotion.data.images import (
    DEFAULT_MIN_SIZE,
    check_channels,
    image_size_hw,
    load_image,
)
from kerascv_emotion.data.index import DatasetIndex, IndexRecord, read_index
from kerascv_emotion.errors import BadImageError, ConfigError, DataError
from kerascv_emotion.io import atomic_path, read_json, write_json

log = logging.getLogger(__name__)

CACHE_FORMAT = "kerascv_emotion.cache/2"  # /2: per-row sources (size, mtime_ns) in the record
CACHE_ENV = "KERASCV_EMOTION_CACHE"
BAD_IMAGE_POLICIES = ("skip", "fail")
CHUNK = 256  # images decoded per round; bounds the build's memory
STALE_TEMP_SECONDS = 3600
"""A hidden temporary file in the cache folder untouched this long is a killed build's."""


@dataclass
class CachedSplit:
    """One decoded split.

    ``images`` uint8 ``(N, H, W, C)`` (a read-only memory map of the cache file),
    ``label_ids`` int64 ``(N,)``, ``valence_arousal`` float32 ``(N, 2)`` or None,
    ``paths`` the kept images' paths relative to the dataset root, ``skipped`` one
    ``{"path", "reason"}`` per image left out under ``on_bad_image="skip"``.
    """

    images: np.ndarray
    label_ids: np.ndarray
    valence_arousal: np.ndarray | None
    paths: list[str]
    class_names: list[str]
    skipped: list[dict[str, str]]
    split: str
    cache_file: Path | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of every image."""
        return tuple(int(v) for v in self.images.shape[1:])  # type: ignore[return-value]


def cache_dir_for(cache_dir: str | os.PathLike | None = None, index_csv: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir`` when given, else ``$KERASCV_EMOTION_CACHE``, else
    ``<index folder>/.cache``, else the user cache folder (every caller resolves it here)."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    if index_csv is not None:
        return Path(index_csv).parent / ".cache"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kerascv_emotion"


def cache_key(
    index: DatasetIndex, split: str, image_size: tuple[int, int], channels: int,
    min_size: int, max_pixels: int | None,
) -> str:
    """Hex digest naming a cache entry: index content + split + every decoding setting."""
    settings = {
        "format": CACHE_FORMAT, "index": index.fingerprint(), "split": split,
        "size": list(image_size), "channels": channels, "min_size": min_size,
        "max_pixels": max_pixels,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


class Progress:
    """A one-line stderr progress bar (``\\r``-updated), silent when disabled. Written to a
    file or pipe (a Snakemake log), it prints a line at each tenth instead of redrawing."""

    def __init__(self, label: str, total: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last_tenth = -1

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        frac = done / max(self.total, 1)
        if not self.interactive:
            tenth = int(10 * frac)
            if tenth == self.last_tenth:
                return
            self.last_tenth = tenth
            elapsed = time.perf_counter() - self.start
            self.stream.write(f"{self.label}: {done}/{self.total} {elapsed:.0f}s\n")
            self.stream.flush()
            return
        bar = "#" * int(30 * frac)
        elapsed = time.perf_counter() - self.start
        self.stream.write(f"\r{self.label} [{bar:<30}] {done}/{self.total} {elapsed:.0f}s")
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


Source = list[int] | None
"""A file's ``[st_size, st_mtime_ns]`` when it was cached, ``None`` if it could not be stat'ed."""
Decoded = np.ndarray | BadImageError


def _sources(index: DatasetIndex) -> list[Source]:
    """The :data:`Source` of every row of ``index`` (one ``stat`` each)."""
    out: list[Source] = []
    for rec in index.records:
        try:
            st = os.stat(index.resolve(rec))
        except OSError:
            out.append(None)
            continue
        out.append([int(st.st_size), int(st.st_mtime_ns)])
    return out


@dataclass
class _Previous:
    """The rows of an earlier build of the same entry whose sources have not changed."""

    meta: dict[str, Any]
    images: np.ndarray
    unchanged: set[int]

    def __post_init__(self) -> None:
        self._reasons = {row: s["reason"] for row, s in zip(self.meta["skipped_rows"], self.meta["skipped"],
                                                             strict=True)}
        kept = (row for row in range(self.meta["n_rows"]) if row not in self._reasons)
        self._position = {row: i for i, row in enumerate(kept)}

    def get(self, row: int, path: str) -> Decoded | None:
        """Row ``row`` as the earlier build left it (its image, or its skip), or None to decode it."""
        if row not in self.unchanged:
            return None
        if row in self._reasons:
            return BadImageError(path, self._reasons[row])
        return np.asarray(self.images[self._position[row]])


def _decode_all(
    index: DatasetIndex, records: Sequence[IndexRecord], image_size: tuple[int, int],
    channels: int, min_size: int, max_pixels: int | None, workers: int, previous: _Previous | None,
) -> Iterator[tuple[int, Decoded]]:
    """Yield ``(row, image or BadImageError)`` in row order, decoding ``CHUNK`` rows at a time
    (rows ``previous`` holds unchanged are copied from it)."""

    def decode(row: int) -> Decoded:
        rec = records[row]
        kept = previous.get(row, str(index.resolve(rec))) if previous is not None else None
        if kept is not None:
            return kept
        try:
            return load_image(index.resolve(rec), image_size, channels, rec.face_box, min_size, max_pixels)
        except BadImageError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(records), CHUNK):
            yield from enumerate(pool.map(decode, range(start, min(start + CHUNK, len(records)))), start)


def _shrink_npy(path: Path, data_offset: int, shape: tuple[int, ...]) -> None:
    """Rewrite ``path`` with header ``shape`` and its first ``prod(shape)`` data bytes."""
    with atomic_path(path) as tmp, open(path, "rb") as src, open(tmp, "wb") as dst:
        np.lib.format.write_array_header_1_0(dst, {"descr": "|u1", "fortran_order": False, "shape": shape})
        src.seek(data_offset)
        remaining = int(np.prod(shape))
        while remaining:
            block = src.read(min(remaining, 1 << 22))
            dst.write(block)
            remaining -= len(block)


def _build(
    index: DatasetIndex, split: str, image_file: Path, meta_file: Path, key: str,
    image_size: tuple[int, int], channels: int, min_size: int, max_pixels: int | None,
    on_bad_image: str, workers: int, progress: bool, sources: list[Source], previous: _Previous | None,
) -> dict[str, Any]:
    records = index.records
    h, w = image_size
    shape = (len(records), h, w, channels)
    skipped: list[dict[str, str]] = []
    skipped_rows: list[int] = []
    bar = Progress(f"cache {split} {h}x{w}x{channels}", len(records), progress)
    with atomic_path(image_file) as tmp:
        with open(tmp, "wb") as out:
            np.lib.format.write_array_header_1_0(out, {"descr": "|u1", "fortran_order": False, "shape": shape})
            data_offset = out.tell()
            for row, result in _decode_all(index, records, image_size, channels, min_size, max_pixels, workers,
                                           previous):
                if isinstance(result, BadImageError):
                    if on_bad_image == "fail":
                        raise result
                    rel = records[row].path
                    log.warning("cache: skipped %s (%s)", rel, result.reason)
                    skipped.append({"path": rel, "reason": result.reason})
                    skipped_rows.append(row)
                else:
                    out.write(result.tobytes())
                if (row + 1) % CHUNK == 0 or row + 1 == len(records):
                    bar.update(row + 1)
        if skipped_rows:
            _shrink_npy(tmp, data_offset, (len(records) - len(skipped_rows), h, w, channels))
    meta = {
        "format": CACHE_FORMAT, "key": key, "split": split, "image_size": [h, w],
        "channels": channels, "n_rows": len(records), "n_images": len(records) - len(skipped_rows),
        "skipped": skipped, "skipped_rows": skipped_rows, "sources": sources,
    }
    write_json(meta_file, meta)
    return meta


def _read_meta(image_file: Path, meta_file: Path, key: str) -> dict[str, Any] | None:
    """The stored record if the entry is complete and matches ``key``, else None."""
    if not (image_file.is_file() and meta_file.is_file()):
        return None
    try:
        meta = read_json(meta_file)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("key") != key or meta.get("format") != CACHE_FORMAT:
        return None
    return meta


def _open_images(
    image_file: Path, meta: dict[str, Any], hw: tuple[int, int], channels: int,
) -> np.ndarray | None:
    """Memory-map a cache file; None if it is missing or its shape disagrees with ``meta``."""
    if meta["n_images"] == 0:
        reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in meta["skipped"][:3])
        raise DataError(f"every image of split {meta['split']!r} was skipped as unreadable ({reasons} ...)")
    try:
        images = np.load(image_file, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return images if images.shape == (meta["n_images"], *hw, channels) else None


def _remove_stale_temps(folder: Path) -> None:
    """Delete the atomic writers' hidden temporaries (``.NAME.*.npy``/``.tmp``) in ``folder``
    older than :data:`STALE_TEMP_SECONDS`."""
    if not folder.is_dir():
        return
    cutoff = time.time() - STALE_TEMP_SECONDS
    for path in folder.glob(".*"):
        try:
            if path.suffix in (".npy", ".tmp") and path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                log.info("cache: removed %s, left by an interrupted build", path)
        except FileNotFoundError:  # removed meanwhile by another job
            continue


def _size(n_bytes: float) -> str:
    """``n_bytes`` in the largest decimal unit that keeps it at 1 or more: ``"2.5 kB"``, ``"3.10 GB"``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.2f} {unit}"
    return f"{int(n_bytes)} bytes"


def _check_room(folder: Path, split: str, n_rows: int, hw: tuple[int, int], channels: int) -> None:
    """Raise DataError when the cache file (``n_rows`` x H x W x C bytes) cannot fit on the
    disk of ``folder`` (or of its nearest existing parent)."""
    need = n_rows * hw[0] * hw[1] * channels
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if need > free:
        raise DataError(
            f"the cache of split {split!r} needs {_size(need)} ({n_rows} images x {hw[0]}x{hw[1]}x{channels} bytes) "
            f"but {existing} has {_size(free)} free; use a smaller --image-size or another --cache-dir "
            f"(or {CACHE_ENV})")


def _default_workers() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def load_split(
    index: DatasetIndex | str | os.PathLike,
    split: str,
    image_size: int | Sequence[int],
    channels: int = 3,
    cache_dir: str | os.PathLike | None = None,
    on_bad_image: str = "skip",
    workers: int | None = None,
    progress: bool = True,
    min_size: int = DEFAULT_MIN_SIZE,
    max_pixels: int | None = None,
    refresh: bool = False,
) -> CachedSplit:
    """Decode (once) and memory-map the images of one split.

    ``index`` is a DatasetIndex or the path of an index CSV; ``image_size`` an int or
    ``(H, W)``. ``on_bad_image="skip"`` leaves undecodable images out (each logged and
    listed in ``skipped``); ``"fail"`` raises BadImageError naming the first one (also when
    a reused cache recorded skips). ``workers`` decoding threads (default: all cores).
    ``min_size``/``max_pixels`` are passed to :func:`~kerascv_emotion.data.images.load_image`.
    Images whose size or modification time changed since the cache was built are decoded
    again (module docstring); ``refresh`` decodes every image again.
    """
    if on_bad_image not in BAD_IMAGE_POLICIES:
        raise ConfigError(f"on_bad_image={on_bad_image!r}: use one of {BAD_IMAGE_POLICIES}")
    index_csv: Path | None = None
    if not isinstance(index, DatasetIndex):
        index_csv = Path(index)
        index = read_index(index_csv)
    hw = image_size_hw(image_size)
    check_channels(channels)
    workers = _default_workers() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"workers={workers}: use 1 or more decoding threads")
    sub = index.subset(split)
    if not sub.records:
        raise DataError(f"split {split!r} of the index has no images (splits present: {index.splits()})")
    key = cache_key(sub, split, hw, channels, min_size, max_pixels)
    folder = cache_dir_for(cache_dir, index_csv)
    stem = f"{split}-{hw[0]}x{hw[1]}x{channels}-{key[:20]}"
    image_file, meta_file = folder / f"{stem}.npy", folder / f"{stem}.json"

    sources = _sources(sub)
    meta = _read_meta(image_file, meta_file, key)
    if meta is not None and refresh:
        log.info("cache: decoding every image of split %r again (refresh asked for)", split)
        meta = None
    previous = None
    if meta is not None:
        changed = [row for row, (old, new) in enumerate(zip(meta["sources"], sources, strict=True)) if old != new]
        if changed:
            log.warning("cache: %d of %d images of split %r changed on disk since %s was built (first: %s); "
                        "decoding them again", len(changed), len(sources), split, image_file.name,
                        sub.records[changed[0]].path)
            old = _open_images(image_file, meta, hw, channels) if meta["n_images"] else np.empty((0, 0), np.uint8)
            previous = None if old is None else _Previous(meta, old, set(range(len(sources))) - set(changed))
            meta = None
    images = _open_images(image_file, meta, hw, channels) if meta is not None else None
    if meta is not None and images is None:
        log.warning("cache: %s is unreadable or incomplete; rebuilding it", image_file)
    if images is not None and meta["skipped"] and on_bad_image == "fail":
        first = meta["skipped"][0]
        raise BadImageError(str(sub.root / first["path"]), first["reason"])
    if images is None:
        _remove_stale_temps(folder)
        _check_room(folder, split, len(sub.records), hw, channels)
        meta = _build(sub, split, image_file, meta_file, key, hw, channels, min_size, max_pixels,
                      on_bad_image, workers, progress, sources, previous)
        images = _open_images(image_file, meta, hw, channels)
        if images is None:
            raise DataError(f"cache file {image_file} could not be read back after building it; "
                            f"check the disk or set {CACHE_ENV} to another folder")
    if meta["skipped"]:
        log.warning("cache: %d of %d images of split %r were skipped (listed in %s; each is decoded again "
                    "once it changes on disk)",
                    len(meta["skipped"]), meta["n_rows"], split, meta_file)
    keep = np.ones(meta["n_rows"], dtype=bool)
    keep[np.asarray(meta["skipped_rows"], dtype=np.int64)] = False
    return CachedSplit(
        images=images,
        label_ids=sub.label_ids()[keep],
        valence_arousal=sub.valence_arousal()[keep] if sub.has_valence_arousal else None,
        paths=[r.path for r, k in zip(sub.records, keep, strict=True) if k],
        class_names=list(sub.class_names),
        skipped=list(meta["skipped"]),
        split=split,
        cache_file=image_file,
    )
