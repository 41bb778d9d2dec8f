"""The dataset index: folder layouts, stable label ids, seeded stratified splits, path safety."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from kerascv_emotion.data.folders import index_from_folders
from kerascv_emotion.data.index import (
    DatasetIndex,
    IndexRecord,
    SplitOptions,
    assign_splits,
    read_index,
)
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
    index = index_from_folders(root, SplitOptions(val_fraction=0.2, test_fraction=0.2, seed=3))
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
    index = index_from_folders(root, SplitOptions(val_fraction=0.1, test_fraction=0.2, seed=0))
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
