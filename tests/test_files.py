"""The one folder walk (data/files.py) that ``index`` (the folder readers) and ``predict`` share:
its order, hidden files, and every file it does not take listed with a reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kerascv_emotion.data.files import walk_files
from kerascv_emotion.data.readers import build_index
from kerascv_emotion.predict import collect_inputs


def _tree(root: Path) -> Path:
    for rel in ("img10.png", "img2.PNG", "Img3.jpg", "notes.txt", ".hidden.png", "sub2/b.png", "Sub10/a.png",
                "sub/c.png", ".cache/x.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    (root / "gone.png").symlink_to(root / "missing.png")
    os.mkfifo(root / "pipe.png")  # never opened: a FIFO blocks whoever opens it for reading
    (root / "linked").symlink_to(root / "sub", target_is_directory=True)
    return root


def test_walk_order_and_skips(tmp_path: Path) -> None:
    root = _tree(tmp_path / "photos")
    skipped: list[dict[str, str]] = []
    found = list(walk_files(root, skipped, relative_to=root))
    # a folder's files in natural order (case ignored), then its sub-folders in code-point order
    assert found == ["img2.PNG", "Img3.jpg", "img10.png", "Sub10/a.png", "sub/c.png", "sub2/b.png"]
    reasons = {s["path"]: s["reason"] for s in skipped}
    assert reasons == {
        "gone.png": f"dangling symlink (to {root / 'missing.png'})",
        "notes.txt": "not an image extension (.txt)",
        "pipe.png": "not a regular file (a FIFO, socket or device)",
        "linked": f"link to a folder, not followed (to {root / 'sub'})",
    }
    as_found = list(walk_files(root, [], extensions={".png"}))
    assert as_found == [os.path.join(root, "img2.PNG"), os.path.join(root, "img10.png"),
                        os.path.join(root, "Sub10", "a.png"), os.path.join(root, "sub", "c.png"),
                        os.path.join(root, "sub2", "b.png")]


def test_index_and_predict_walk_alike(tmp_path: Path) -> None:
    """The folder reader and predict take the same files in the same order and skip the same
    others (predict also takes videos; the index also skips names that are not UTF-8)."""
    root = tmp_path / "data"
    _tree(root / "happy")
    (root / "sad").mkdir()
    (root / "sad" / "s.png").write_bytes(b"s")
    index = build_index("folders", root, val_fraction=0, test_fraction=0)
    files, skipped = collect_inputs([root / "happy"])
    assert [Path(f).relative_to(root).as_posix() for f in files] == [
        r.path for r in index.records if r.label == "happy"]
    assert sorted(Path(s["path"]).relative_to(root).as_posix() for s in skipped) == sorted(
        s["path"] for s in index.meta["skipped"])
    assert {s["reason"] for s in skipped} - {s["reason"] for s in index.meta["skipped"]} == {
        "not an image or video extension (.txt)"}


@pytest.mark.skipif(os.name != "posix", reason="file names are bytes on POSIX only")
def test_index_skips_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ok.png").write_bytes(b"ok")
    try:
        with open(os.path.join(os.fsencode(tmp_path / "a"), b"caf\xe9.png"), "wb") as handle:
            handle.write(b"x")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    index = build_index("folders", tmp_path, val_fraction=0, test_fraction=0)
    assert [r.path for r in index.records] == ["a/ok.png"]
    assert [s["reason"] for s in index.meta["skipped"]] == [
        "file name is not UTF-8 (an index is UTF-8 text); rename it"]
    files, _ = collect_inputs([tmp_path / "a"])
    assert len(files) == 2  # predict takes it and writes its bytes (predict.write_csv)
