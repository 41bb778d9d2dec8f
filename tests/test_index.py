"""The dataset index: folder layouts, stable label ids, seeded stratified splits, path safety."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from kerascv_emotion.data.index import (
    DatasetIndex,
    IndexRecord,
    SplitOptions,
    assign_splits,
    read_index,
)
from kerascv_emotion.data.readers.folders import read_folders
from kerascv_emotion.errors import DataError


def _write_images(folder: Path, n: int, size: int = 8) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (size, size), (i * 10 % 255, 0, 0)).save(folder / f"img{i}.png")


def test_class_layout_with_space_in_name_round_trips(tmp_path: Path) -> None:
    root = tmp_path / "xray"
    for name, n in (("Covid", 20), ("Normal", 20), ("Viral Pneumonia", 10)):
        _write_images(root / name, n)
    (root / "Normal" / "notes.txt").write_text("stray file")
    index = read_folders(root, SplitOptions(val_fraction=0.2, test_fraction=0.2, seed=3))
    assert index.class_names == ["Covid", "Normal", "Viral Pneumonia"]
    counts = index.counts()
    assert counts["test"] == {"Covid": 4, "Normal": 4, "Viral Pneumonia": 2}
    assert counts["val"] == {"Covid": 4, "Normal": 4, "Viral Pneumonia": 2}
    assert index.meta["skipped"] == [{"path": "Normal/notes.txt", "reason": "not an image extension (.txt)"}]

    out = index.write(tmp_path / "idx" / "index.csv")
    again = read_index(out)
    assert again.class_names == index.class_names
    assert again.records == index.records
    assert again.root == root.resolve()
    assert again.fingerprint() == index.fingerprint()
    assert (again.label_ids() == index.label_ids()).all()
    assert again.resolve(again.records[0]).is_file()


def test_split_layout_keeps_given_splits_and_carves_missing_test(tmp_path: Path) -> None:
    root = tmp_path / "fer"
    for split in ("train", "val"):
        for name in ("angry", "happy"):
            _write_images(root / split / name, 10 if split == "train" else 3)
    index = read_folders(root, SplitOptions(val_fraction=0.1, test_fraction=0.2, seed=0))
    counts = index.counts()
    assert counts["val"] == {"angry": 3, "happy": 3}  # the given val split is kept as it is
    assert counts["test"] == {"angry": 2, "happy": 2}  # carved from train
    assert counts["train"] == {"angry": 8, "happy": 8}
    assert index.meta["layout"] == "split/class"


def test_splits_are_seeded_and_stratified() -> None:
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    first = assign_splits(labels, 0.1, 0.2, seed=7)
    assert first == assign_splits(labels, 0.1, 0.2, seed=7)
    assert first != assign_splits(labels, 0.1, 0.2, seed=8)
    for lab, n in (("a", 50), ("b", 30), ("c", 20)):
        mine = [s for s, lbl in zip(first, labels, strict=True) if lbl == lab]
        assert mine.count("test") == round(n * 0.2)
        assert mine.count("val") == round(n * 0.1)


def test_group_split_never_straddles() -> None:
    groups = [f"S{i // 3:03d}" for i in range(90)]
    labels = ["x", "y", "z"] * 30
    splits = assign_splits(labels, 0.2, 0.2, seed=1, groups=groups)
    by_group: dict[str, set[str]] = {}
    for g, s in zip(groups, splits, strict=True):
        by_group.setdefault(g, set()).add(s)
    assert all(len(s) == 1 for s in by_group.values())
    assert {"train", "val", "test"} <= set(splits)


def test_tiny_class_keeps_a_training_image() -> None:
    splits = assign_splits(["a", "b", "b", "b", "b", "b"], 0.3, 0.3, seed=0)
    assert splits[0] == "train"


@pytest.mark.parametrize("bad", ["../outside.png", "/etc/passwd", "a/../../b.png", "C:/x.png"])
def test_paths_escaping_root_are_rejected(tmp_path: Path, bad: str) -> None:
    csv = tmp_path / "index.csv"
    DatasetIndex(tmp_path, ["a"], [IndexRecord("ok.png", "train", "a")]).write(csv)
    csv.write_text(csv.read_text() + f"{bad},train,a,,,,,,,\n")
    with pytest.raises(DataError, match="line 3"):
        read_index(csv)


def test_read_index_errors_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_index(tmp_path / "missing.csv")
    csv = tmp_path / "index.csv"
    DatasetIndex(tmp_path, ["a", "b"], [IndexRecord("x.png", "train", "a")]).write(csv)
    csv.write_text(csv.read_text() + "y.png,train,zebra,,,,,,,\n")
    with pytest.raises(DataError, match="zebra"):
        read_index(csv)
    csv.write_text("path,split,label\nx.png,holdout,a\n")
    with pytest.raises(DataError, match="line 2"):
        read_index(csv)


# --- pinned split assignment --------------------------------------------------------------
# Computed with the folder reader of c3dcac2 (before folders became one of data/readers and
# shared the file walk with predict); a refactor must leave every file's split as it was, since
# the index's order and splits decide the image caches and every reported figure.

_PIN_FLAT = ([f"happy/img{i}.png" for i in range(1, 13)]
             + ["happy/Sub10/a.png", "happy/sub2/b.png", "happy/sub/c.png", "happy/.hidden.png", "happy/notes.txt"]
             + [f"sad/s{i}.jpg" for i in range(1, 8)] + [f"Neutral/n{i}.png" for i in range(1, 6)])
_PIN_SPLIT = ([f"train/happy/x{i}.png" for i in range(1, 10)] + [f"train/sad/y{i}.png" for i in range(1, 7)]
              + ["val/happy/v1.png", "val/happy/v2.png", "val/sad/v3.png"])
_PIN_CK = [f"{c}/S{s:03d}_001_{f:08d}.png" for c in ("anger", "happy", "sadness") for s in (5, 10, 11, 22, 37)
           for f in (1, 2)]
_PINNED = {
    # case: (format, options, tree, class names, "path split" of each index row in order, skipped paths)
    "flat": ("folders", dict(val_fraction=0.2, test_fraction=0.2, seed=3), _PIN_FLAT, ["happy", "Neutral", "sad"], """
        happy/img1.png train, happy/img2.png train, happy/img3.png train, happy/img4.png val,
        happy/img5.png train, happy/img6.png test, happy/img7.png train, happy/img8.png train,
        happy/img9.png train, happy/img10.png train, happy/img11.png test, happy/img12.png val,
        happy/Sub10/a.png test, happy/sub/c.png train, happy/sub2/b.png val,
        Neutral/n1.png train, Neutral/n2.png train, Neutral/n3.png val, Neutral/n4.png train, Neutral/n5.png test,
        sad/s1.jpg train, sad/s2.jpg val, sad/s3.jpg test, sad/s4.jpg train, sad/s5.jpg train, sad/s6.jpg train,
        sad/s7.jpg train""", ["happy/notes.txt"]),
    "split": ("folders", dict(val_fraction=0.1, test_fraction=0.2, seed=0), _PIN_SPLIT, ["happy", "sad"], """
        train/happy/x1.png train, train/happy/x2.png train, train/happy/x3.png train, train/happy/x4.png train,
        train/happy/x5.png test, train/happy/x6.png test, train/happy/x7.png train, train/happy/x8.png train,
        train/happy/x9.png train, train/sad/y1.png train, train/sad/y2.png train, train/sad/y3.png train,
        train/sad/y4.png test, train/sad/y5.png train, train/sad/y6.png train,
        val/happy/v1.png val, val/happy/v2.png val, val/sad/v3.png val""", []),
    "ck": ("ckplus", dict(val_fraction=0.2, test_fraction=0.2, seed=4), _PIN_CK, ["anger", "happy", "sad"], """
        anger/S005_001_00000001.png train, anger/S005_001_00000002.png train,
        anger/S010_001_00000001.png train, anger/S010_001_00000002.png train,
        anger/S011_001_00000001.png test, anger/S011_001_00000002.png test,
        anger/S022_001_00000001.png train, anger/S022_001_00000002.png train,
        anger/S037_001_00000001.png val, anger/S037_001_00000002.png val,
        happy/S005_001_00000001.png train, happy/S005_001_00000002.png train,
        happy/S010_001_00000001.png train, happy/S010_001_00000002.png train,
        happy/S011_001_00000001.png test, happy/S011_001_00000002.png test,
        happy/S022_001_00000001.png train, happy/S022_001_00000002.png train,
        happy/S037_001_00000001.png val, happy/S037_001_00000002.png val,
        sadness/S005_001_00000001.png train, sadness/S005_001_00000002.png train,
        sadness/S010_001_00000001.png train, sadness/S010_001_00000002.png train,
        sadness/S011_001_00000001.png test, sadness/S011_001_00000002.png test,
        sadness/S022_001_00000001.png train, sadness/S022_001_00000002.png train,
        sadness/S037_001_00000001.png val, sadness/S037_001_00000002.png val""", []),
}


@pytest.mark.parametrize("case", sorted(_PINNED))
def test_folder_splits_are_pinned(tmp_path: Path, case: str) -> None:
    from kerascv_emotion.data.readers import build_index

    fmt, options, tree, names, rows, skipped = _PINNED[case]
    for rel in tree:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(rel.encode())  # contents unique: no duplicates
    index = build_index(fmt, tmp_path, **options)
    assert index.class_names == names
    assert [f"{r.path} {r.split}" for r in index.records] == [row.strip() for row in rows.split(",")]
    assert [s["path"] for s in index.meta["skipped"]] == skipped
