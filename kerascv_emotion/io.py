"""Atomic file output: an interrupted run, or one that fails (a full disk, a read-only
folder), never leaves a half-written file or a temporary file behind. Files get the mode
``0o666`` less the process's umask, as ``open`` would give them (``mkstemp`` alone gives 0600).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def umask() -> int:
    """The process's umask (read from ``/proc`` where possible: setting it to read it back
    would briefly change it for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def _name_target(exc: OSError, target: Path, prefix: str) -> None:
    """Make ``exc`` name ``target``, the file the user asked for, where it names no file
    (``write`` or ``fsync`` on a full disk) or names the hidden temporary beside it (``prefix*``:
    ``mkstemp``, a copy into it, the rename); a folder that cannot be made keeps its name."""

    def temporary(name: Any) -> bool:
        path = Path(os.fsdecode(name))
        return path.parent == target.parent and path.name.startswith(prefix)

    if exc.errno is None:  # OSError("a message"): a name would replace its message in str(exc)
        return
    if exc.filename is None or any(temporary(n) for n in (exc.filename, exc.filename2) if n is not None):
        exc.filename, exc.filename2 = str(target), None


@contextlib.contextmanager
def _temporary(target: Path, prefix: str, suffix: str) -> Iterator[str]:
    """A temporary file beside ``target`` with the umask's mode, renamed over ``target`` when
    the block succeeds and removed when it fails. An OSError names ``target``, never the
    temporary (:func:`_name_target`)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    except OSError as exc:
        _name_target(exc, target, prefix)
        raise
    try:
        try:
            os.fchmod(fd, 0o666 & ~umask())
        finally:
            os.close(fd)
        yield tmp_name
        os.replace(tmp_name, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            _name_target(exc, target, prefix)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success."""
    target = Path(path)
    with _temporary(target, f".{target.name}.", ".tmp") as tmp_name, open(tmp_name, mode, **kwargs) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for writers that want a file name
    (``model.save``, ``fig.savefig``, ``np.save``); it is renamed over ``path`` on success.

    ``suffix`` defaults to the target's own suffix so that writers that pick a format
    from the extension (Keras, matplotlib) still do.
    """
    target = Path(path)
    with _temporary(target, f".{target.stem}.", suffix if suffix is not None else target.suffix) as tmp_name:
        yield Path(tmp_name)


def _json_default(value: Any) -> Any:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        np = None
    if np is not None:
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.bool_):
            return bool(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def to_jsonable(value: Any) -> Any:
    """Recursively convert numpy scalars/arrays and non-finite floats (-> None) for JSON."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        converted = _json_default(value)
    except TypeError:
        return value
    return to_jsonable(converted)


def write_json(path: str | os.PathLike, data: Any, indent: int = 2) -> None:
    """Write ``data`` as JSON atomically; NaN/inf become ``null``."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(to_jsonable(data), handle, indent=indent, allow_nan=False)
        handle.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
