"""The one walk over a folder of images, for the folder reader (``index``) and ``predict``.

Order: the files of a folder in natural order (``img2`` before ``img10``, case ignored), then
each sub-folder in code-point order (``Sub10`` before ``sub`` before ``sub2``), recursively.
The sub-folder order is the one the folder index has always used: an index's row order
decides its carved splits and its cache keys, so it stays as it is.

Hidden files and folders (a leading ``.``) are left out silently; every other file that is
not taken is listed as a skip with its reason: an extension that is not wanted, a dangling
link, something that is not a regular file (a FIFO, socket or device: never opened, so it
cannot block), a link to a folder (not followed), or a folder that cannot be listed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterator
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def natural_key(text: str) -> list[object]:
    """Sort key that orders ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def is_utf8(name: str) -> bool:
    """Whether a file name (as ``os`` decodes it, non-UTF-8 bytes as surrogates) is UTF-8 text."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _skip_reason(full: str, name: str, extensions: Collection[str], kind: str) -> str | None:
    """Why the file ``full`` (named ``name``) is not taken, or None when it is."""
    suffix = Path(name).suffix
    if suffix.lower() not in extensions:
        return f"not {kind} extension ({suffix or 'none'})"
    if os.path.islink(full) and not os.path.exists(full):
        return f"dangling symlink (to {os.readlink(full)})"
    if not os.path.isfile(full):
        return "not a regular file (a FIFO, socket or device)"
    return None


def walk_files(
    folder: str | os.PathLike,
    skipped: list[dict[str, str]],
    *,
    extensions: Collection[str] = IMAGE_EXTENSIONS,
    kind: str = "an image",
    relative_to: str | os.PathLike | None = None,
) -> Iterator[str]:
    """Yield the regular files below ``folder`` whose extension (any case) is in
    ``extensions``, in the order of the module doc; append ``{"path", "reason"}`` to
    ``skipped`` for each other file (the reason says "not ``kind`` extension").

    Paths are POSIX and relative to ``relative_to`` when it is given, else ``folder`` joined
    with the path below it (as ``os.path.join`` writes it)."""
    def shown(path: str) -> str:
        return Path(path).relative_to(relative_to).as_posix() if relative_to is not None else path

    def unlistable(error: OSError) -> None:
        skipped.append({"path": shown(str(error.filename)), "reason": f"folder cannot be listed ({error.strerror})"})

    for dirpath, dirnames, filenames in os.walk(folder, onerror=unlistable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted((f for f in filenames if not f.startswith(".")), key=natural_key):
            full = os.path.join(dirpath, name)
            reason = _skip_reason(full, name, extensions, kind)
            if reason is None:
                yield shown(full)
            else:
                skipped.append({"path": shown(full), "reason": reason})
        for name in list(dirnames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):  # os.walk lists a link to a folder here and does not follow it
                dirnames.remove(name)
                skipped.append({"path": shown(full), "reason": f"link to a folder, not followed (to {os.readlink(full)})"})
