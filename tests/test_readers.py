"""Dataset readers (FER2013 CSV/folders, AffectNet, COVID X-rays, CK+), class mapping,
duplicate detection; fixtures are written here in each set's real format."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, PngImagePlugin

from kerascv_emotion.data.index import SplitOptions, read_index
from kerascv_emotion.data.readers import (
    CANONICAL_CLASS_MAP,
    CANONICAL_CLASSES,
    POLICY,
    available_formats,
    build_index,
    default_images_dir,
    drop_duplicates,
    duplicate_summary,
    find_duplicates,
)
from kerascv_emotion.data.readers.common import resolve_class_map
from kerascv_emotion.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is absent")

_rng = np.random.default_rng(0)


def _png(path: Path, size: int = 8, pixels: np.ndarray | None = None, **save_kwargs: object) -> np.ndarray:
    """Write a tiny grayscale PNG (random content unless ``pixels``); returns its pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if pixels is None:
        pixels = _rng.integers(0, 256, size=(size, size), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG", **save_kwargs)
    return pixels


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _fer_pixels(seed: int, n: int = 48 * 48) -> str:
    return " ".join(str(v) for v in np.random.default_rng(seed).integers(0, 256, size=n))


# --- entry point -------------------------------------------------------------------------

def test_formats_and_option_errors(tmp_path: Path) -> None:
    assert available_formats() == ["folders", "fer2013-csv", "fer2013", "affectnet", "covid", "ckplus"]
    _png(tmp_path / "data" / "a" / "x.png")
    with pytest.raises(ConfigError, match="unknown dataset format 'nope'"):
        build_index("nope", tmp_path / "data")
    with pytest.raises(ConfigError, match="regression.*affectnet"):
        build_index("folders", tmp_path / "data", task="regression")
    with pytest.raises(ConfigError, match="needs images_dir"):
        build_index("fer2013-csv", tmp_path / "data")
    with pytest.raises(ConfigError, match="only used by format 'fer2013-csv'"):
        build_index("folders", tmp_path / "data", images_dir=tmp_path / "img")
    with pytest.raises(DataError, match="does not exist"):
        build_index("covid", tmp_path / "missing")
    assert default_images_dir(tmp_path / "idx" / "fer.csv") == tmp_path / "idx" / "fer_images"


def test_folders_format_delegates_and_records_options(tmp_path: Path) -> None:
    for cls in ("cat", "dog"):
        for i in range(5):
            _png(tmp_path / cls / f"{i}.png")
    index = build_index("folders", tmp_path, val_fraction=0.2, test_fraction=0.2, seed=3)
    assert index.meta["source"] == "folders"
    assert index.meta["reader"] == {
        "format": "folders", "source": str(tmp_path.resolve()), "task": "classification",
        "val_fraction": 0.2, "test_fraction": 0.2, "seed": 3, "class_map": None, "classes": None,
    }
    assert index.counts() == {"train": {"cat": 3, "dog": 3}, "val": {"cat": 1, "dog": 1},
                              "test": {"cat": 1, "dog": 1}}


def test_split_option_defaults_have_one_home() -> None:
    """The CLI's ``index`` options and the workflow schema's ``source`` show SplitOptions' defaults."""
    from kerascv_emotion.cli import main

    cli = {p.name: p.default for p in main.commands["index"].params}
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    source = schema["properties"]["datasets"]["additionalProperties"]["properties"]["source"]["properties"]
    for name in ("val_fraction", "test_fraction", "seed"):
        assert cli[name] == source[name]["default"] == getattr(SplitOptions, name), name
    assert cli["fmt"] == source["format"]["default"]


# --- FER2013 -----------------------------------------------------------------------------

FER_HEADER = ["emotion", "pixels", "Usage"]


def test_fer2013_csv_writes_pngs_and_maps_usage(tmp_path: Path) -> None:
    rows = [[0, _fer_pixels(1), "Training"], [3, _fer_pixels(2), "Training"], [6, _fer_pixels(3), "PublicTest"],
            [4, _fer_pixels(4), "PrivateTest"], [3, _fer_pixels(5), "Training"]]
    source = _write_csv(tmp_path / "fer2013.csv", FER_HEADER, rows)
    images = tmp_path / "out" / "fer_images"
    index = build_index("fer2013-csv", source, images_dir=images)

    assert index.root == images.resolve()
    assert index.class_names == ["anger", "happy", "neutral", "sad"]
    assert [(r.split, r.label) for r in index.records] == [
        ("train", "anger"), ("train", "happy"), ("val", "neutral"), ("test", "sad"), ("train", "happy")]
    assert index.records[0].path == "train/angry/000002.png"  # CSV line 2
    for rec, (_, text, _) in zip(index.records, rows, strict=True):
        with Image.open(index.resolve(rec)) as img:
            assert img.mode == "L" and img.size == (48, 48)
            np.testing.assert_array_equal(np.asarray(img), np.array(text.split(), dtype=np.uint8).reshape(48, 48))
    assert index.meta["class_map"] == {"angry": "anger"}
    assert index.meta["reader"]["images_dir"] == str(images.resolve())

    written = index.write(tmp_path / "out" / "fer.csv")
    again = read_index(written)
    assert again.records == index.records and again.root == index.root
    # a rerun rewrites nothing and gives the same index
    before = {p: p.stat().st_mtime_ns for p in images.rglob("*.png")}
    assert build_index("fer2013-csv", source, images_dir=images).records == index.records
    assert {p: p.stat().st_mtime_ns for p in images.rglob("*.png")} == before


@pytest.mark.parametrize(("bad_row", "message"), [
    ([2, _fer_pixels(9, n=48 * 48 - 1), "Training"], "pixels has 2303 values; expected 2304"),
    ([7, _fer_pixels(9), "Training"], "emotion '7' is not an id 0-6"),
    (["happy", _fer_pixels(9), "Training"], "emotion 'happy' is not an id"),
    ([2, _fer_pixels(9).replace("1", "x", 1), "Training"], "not an integer"),
    ([2, _fer_pixels(9) + " 256", "Training"], "2305 values"),
    ([2, _fer_pixels(9), "Holdout"], "Usage 'Holdout'"),
])
def test_fer2013_csv_bad_row_names_file_and_line(tmp_path: Path, bad_row: list[object], message: str) -> None:
    source = _write_csv(tmp_path / "fer2013.csv", FER_HEADER, [[0, _fer_pixels(1), "Training"], bad_row])
    with pytest.raises(DataError, match=rf"fer2013\.csv, line 3: .*{re.escape(message)}"):
        build_index("fer2013-csv", source, images_dir=tmp_path / "img")
    assert not (tmp_path / "img").exists()  # validated before any image is written


def test_fer2013_csv_missing_column_and_out_of_range_pixel(tmp_path: Path) -> None:
    source = _write_csv(tmp_path / "fer.csv", ["emotion", "Usage"], [[0, "Training"]])
    with pytest.raises(DataError, match=r"fer\.csv: missing column\(s\) \['pixels'\]"):
        build_index("fer2013-csv", source, images_dir=tmp_path / "img")
    pixels = _fer_pixels(1).split()
    pixels[5] = "300"
    source = _write_csv(tmp_path / "fer.csv", FER_HEADER, [[0, " ".join(pixels), "Training"]])
    with pytest.raises(DataError, match="line 2: pixels holds values outside 0-255"):
        build_index("fer2013-csv", source, images_dir=tmp_path / "img")


def test_fer2013_csv_without_usage_carves_stratified_splits(tmp_path: Path) -> None:
    rows = [[e, _fer_pixels(10 * e + i)] for e in (0, 3) for i in range(10)]
    source = _write_csv(tmp_path / "train.csv", ["emotion", "pixels"], rows)
    index = build_index("fer2013-csv", source, images_dir=tmp_path / "img", val_fraction=0.2, test_fraction=0.1)
    assert index.counts() == {"train": {"anger": 7, "happy": 7}, "val": {"anger": 2, "happy": 2},
                              "test": {"anger": 1, "happy": 1}}
    assert index.meta["usage_column"] is False


def test_fer2013_folders_maps_names_and_carves_missing_test(tmp_path: Path) -> None:
    for split, n in (("train", 10), ("val", 2)):
        for cls in ("angry", "sad"):
            for i in range(n):
                _png(tmp_path / split / cls / f"{split}_{i}.jpg")
    index = build_index("fer2013", tmp_path, test_fraction=0.2)
    assert index.class_names == ["anger", "sad"]
    assert index.counts() == {"train": {"anger": 8, "sad": 8}, "val": {"anger": 2, "sad": 2},
                              "test": {"anger": 2, "sad": 2}}
    assert all(r.path.startswith("train/") for r in index.records if r.split == "test")
    assert index.meta["layout"] == "split/class"


# --- AffectNet ---------------------------------------------------------------------------

AFFECTNET_HEADER = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                    "facial_landmarks", "expression", "valence", "arousal"]


def _affectnet(root: Path) -> Path:
    """AffectNet's own layout: file lists + ``Manually_Annotated_Images/<n>/<file>``."""
    images = root / "Manually_Annotated_Images"
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True)
    train = []
    for i, expression in enumerate([0, 1, 2, 3, 4, 5, 6, 7] * 3 + [8, 9, 10]):
        rel = f"{i % 3}/train_{i}.jpg"
        _png(images / rel)
        va = (-2, -2) if expression == 10 else (round(0.1 * (i % 10) - 0.5, 2), 0.25)
        train.append([rel, 1, 2, 5, 6, "1.0;2.0;3.0", expression, *va])
    train.append(["0/missing.jpg", 0, 0, 4, 4, "", 1, 0.5, 0.5])
    _write_csv(lists / "training.csv", AFFECTNET_HEADER, train)
    val = []
    for i, expression in enumerate([1, 6, 7, 8]):
        rel = f"v/val_{i}.jpg"
        _png(images / rel)
        val.append([rel, 0, 0, 8, 8, "", expression, 0.1, -0.2])
    _write_csv(lists / "validation.csv", AFFECTNET_HEADER, val)
    return root


def test_affectnet_classification_boxes_valence_and_dropped_ids(tmp_path: Path) -> None:
    root = _affectnet(tmp_path / "affectnet")
    index = build_index("affectnet", root, test_fraction=1 / 3, seed=1)
    assert index.root == (root / "Manually_Annotated_Images").resolve()
    assert index.class_names == list(CANONICAL_CLASSES)
    assert index.counts()["train"] == dict.fromkeys(CANONICAL_CLASSES, 2)
    assert index.counts()["test"] == dict.fromkeys(CANONICAL_CLASSES, 1)
    assert {r.path: r.label for r in index.records if r.split == "val"} == {
        "v/val_0.jpg": "happy", "v/val_1.jpg": "anger", "v/val_2.jpg": "contempt"}
    rec = next(r for r in index.records if r.path == "1/train_1.jpg")
    assert (rec.label, rec.face_box, rec.valence, rec.arousal) == ("happy", (1, 2, 5, 6), -0.4, 0.25)
    assert index.meta["dropped"] == {"train: expression no-face": 1, "train: expression none": 1,
                                     "train: expression uncertain": 1, "val: expression none": 1}
    assert [s["path"] for s in index.meta["skipped"]] == ["0/missing.jpg"]
    assert "line 29" in index.meta["skipped"][0]["reason"]


def test_affectnet_regression_keeps_annotated_rows_only(tmp_path: Path) -> None:
    root = _affectnet(tmp_path / "affectnet")
    index = build_index("affectnet", root, task="regression", test_fraction=0)
    assert index.has_valence_arousal
    assert len(index.subset("train")) == 26  # 27 rows, the no-face one has valence -2
    assert "none" in index.class_names and "no-face" not in index.class_names
    assert index.valence_arousal().shape == (30, 2)
    assert index.meta["reader"]["task"] == "regression"


@pytest.mark.parametrize(("column", "value", "message"), [
    ("face_width", "wide", "face box .* is not numeric"),
    ("face_height", "0", "non-positive size"),
    ("expression", "11", "expression '11' is not an id 0-10"),
    ("valence", "1.5", "valence 1.5 is outside"),
    ("subDirectory_filePath", "../x.jpg", "escapes the dataset root"),
])
def test_affectnet_bad_row_names_file_and_line(tmp_path: Path, column: str, value: str, message: str) -> None:
    good = ["a.jpg", 0, 0, 4, 4, "", 1, 0.1, 0.1]
    bad = list(good)
    bad[AFFECTNET_HEADER.index(column)] = value
    _png(tmp_path / "a.jpg")
    _write_csv(tmp_path / "training.csv", AFFECTNET_HEADER, [good, good, bad])
    with pytest.raises(DataError, match=rf"training\.csv, line 4: .*{message}"):
        build_index("affectnet", tmp_path)


def test_affectnet_missing_column_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no AffectNet training.csv"):
        build_index("affectnet", tmp_path)
    header = [c for c in AFFECTNET_HEADER if c != "expression"]
    _write_csv(tmp_path / "training.csv", header, [["a.jpg", 0, 0, 4, 4, "", 0.1, 0.1]])
    with pytest.raises(DataError, match=r"missing column\(s\) \['expression'\]"):
        build_index("affectnet", tmp_path)
    _write_csv(tmp_path / "training.csv", AFFECTNET_HEADER, [["1/a.jpg", 0, 0, 4, 4, "", 1, 0.1, 0.1]])
    (tmp_path / "Manually_Annotated_Images").mkdir()
    with pytest.raises(DataError, match=r"none of the 1 AffectNet images .* exist under .*Manually_Annotated_Images"):
        build_index("affectnet", tmp_path)


# --- COVID X-rays ------------------------------------------------------------------------

def _radiography(root: Path) -> Path:
    for cls in ("COVID", "Normal"):
        for i in range(5):
            _png(root / cls / "images" / f"{cls}-{i}.png")
            _png(root / cls / "masks" / f"{cls}-{i}.png")
    for cls in ("Lung_Opacity", "Viral Pneumonia"):
        for i in range(5):
            _png(root / cls / f"{cls}-{i}.png")
    (root / "COVID.metadata.csv").write_text("FILE NAME,FORMAT\n")
    return root


def test_covid_radiography_layout_never_indexes_masks(tmp_path: Path) -> None:
    root = _radiography(tmp_path / "COVID-19_Radiography_Dataset")
    index = build_index("covid", root, val_fraction=0.2, test_fraction=0.2)
    assert index.class_names == ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]
    assert not any("masks" in r.path for r in index.records)
    assert len(index) == 20 and index.meta["masks_ignored"] == 10
    assert all(c == {"COVID": 1, "Lung_Opacity": 1, "Normal": 1, "Viral Pneumonia": 1}
               for s, c in index.counts().items() if s != "train")


def test_covid_class_selection_and_mapping(tmp_path: Path) -> None:
    root = _radiography(tmp_path / "db")
    index = build_index("covid", root, class_map={"COVID": "covid", "Normal": "normal"},
                        classes=["covid", "normal"], val_fraction=0.2, test_fraction=0.2)
    assert index.class_names == ["covid", "normal"]
    assert {r.label for r in index.records} == {"covid", "normal"} and len(index) == 10
    assert index.meta["reader"]["classes"] == ["covid", "normal"]
    with pytest.raises(DataError, match=r"classes \['Covid'\] requested"):
        build_index("covid", root, classes=["Covid"])


def test_covid_three_class_split_layout(tmp_path: Path) -> None:
    for split, n in (("train", 10), ("test", 2)):
        for cls in ("Covid", "Normal", "Viral Pneumonia"):
            for i in range(n):
                _png(tmp_path / split / cls / f"{i}.jpeg")
    index = build_index("covid", tmp_path, val_fraction=0.2)
    assert index.counts() == {s: dict.fromkeys(["Covid", "Normal", "Viral Pneumonia"], n)
                              for s, n in (("train", 8), ("val", 2), ("test", 2))}


# --- CK+ ---------------------------------------------------------------------------------

def _ckplus(root: Path, subjects: int = 12) -> Path:
    classes = ("anger", "happy", "sadness", "surprise")
    for s in range(subjects):
        for seq in range(2):
            cls = classes[(s + seq) % len(classes)]
            for frame in range(3):
                _png(root / cls / f"S{s + 5:03d}_{seq + 1:03d}_{frame + 10:08d}.png")
    return root


def test_ckplus_split_is_subject_wise(tmp_path: Path) -> None:
    root = _ckplus(tmp_path / "ck")
    index = build_index("ckplus", root, val_fraction=0.2, test_fraction=0.2, seed=4)
    assert index.class_names == ["anger", "happy", "sad", "surprise"]
    splits_of: dict[str, set[str]] = defaultdict(set)
    for r in index.records:
        assert r.group == Path(r.path).name[:4]
        splits_of[r.group].add(r.split)
    assert len(splits_of) == 12 == index.meta["subjects"]
    assert all(len(s) == 1 for s in splits_of.values())
    assert set(index.splits()) == {"train", "val", "test"}
    other = build_index("ckplus", root, val_fraction=0.2, test_fraction=0.2, seed=5)
    assert [r.split for r in other.records] != [r.split for r in index.records]


def test_ckplus_errors(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "anger" / "S005_001_00000001.png")
    _png(tmp_path / "a" / "anger" / "frame1.png")
    with pytest.raises(DataError, match=r"anger/frame1\.png: cannot read a subject id"):
        build_index("ckplus", tmp_path / "a")
    _png(tmp_path / "b" / "train" / "anger" / "S005_001_00000001.png")
    _png(tmp_path / "b" / "val" / "anger" / "S005_001_00000002.png")
    with pytest.raises(DataError, match=r"subjects \['S005'\] appear in more than one split"):
        build_index("ckplus", tmp_path / "b")


# --- class mapping -----------------------------------------------------------------------

def test_canonical_and_user_class_maps(tmp_path: Path) -> None:
    assert set(CANONICAL_CLASS_MAP.values()) == set(CANONICAL_CLASSES)
    names = ["Angry", "sadness", "happy", "other"]
    assert resolve_class_map(names, None, canonical=True) == {
        "Angry": "anger", "sadness": "sad", "happy": "happy", "other": "other"}
    assert resolve_class_map(names, {"anger": "negative", "happy": "joy"}, canonical=True) == {
        "Angry": "negative", "sadness": "sad", "happy": "joy", "other": "other"}
    assert resolve_class_map(names, None, canonical=False) == {n: n for n in names}
    with pytest.raises(ConfigError, match="class_map entry"):
        resolve_class_map(names, {"happy": ""}, canonical=True)

    root = _ckplus(tmp_path / "ck", subjects=4)
    index = build_index("ckplus", root, class_map={"sadness": "negative", "anger": "negative"},
                        classes=["negative", "happy"], val_fraction=0, test_fraction=0)
    assert index.class_names == ["negative", "happy"]
    assert index.label_ids().tolist() == [0 if r.label == "negative" else 1 for r in index.records]
    assert index.meta["class_map"] == {"anger": "negative", "sadness": "negative"}
    assert {r.label for r in index.records} == {"negative", "happy"}


# --- duplicates --------------------------------------------------------------------------

def test_duplicates_found_across_splits_and_dropped_by_policy(tmp_path: Path) -> None:
    pixels = _png(tmp_path / "train" / "happy" / "orig.png")
    for rel in ("val/happy/copy.png", "test/sad/copy.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((tmp_path / "train/happy/orig.png").read_bytes())
    twin = _png(tmp_path / "train" / "sad" / "t1.png")
    _png(tmp_path / "train" / "sad" / "t2.png", pixels=twin)
    info = PngImagePlugin.PngInfo()
    info.add_text("note", "re-saved")
    _png(tmp_path / "val" / "happy" / "resaved.png", pixels=pixels, pnginfo=info)  # same pixels, new bytes
    _png(tmp_path / "val" / "sad" / "unique.png")
    index = build_index("folders", tmp_path, val_fraction=0, test_fraction=0)

    groups = find_duplicates(index, workers=2)
    assert [(g["paths"], g["splits"], g["labels"], g["cross_split"], g["conflicting_labels"]) for g in groups] == [
        (["test/sad/copy.png", "train/happy/orig.png", "val/happy/copy.png"], ["test", "train", "val"],
         ["sad", "happy", "happy"], True, True),
        (["train/sad/t1.png", "train/sad/t2.png"], ["train", "train"], ["sad", "sad"], False, False),
    ]
    summary = duplicate_summary(groups)
    assert (summary["groups"], summary["extra_copies"], summary["cross_split_groups"],
            summary["cross_split_by_splits"], summary["conflicting_groups"]) == (2, 3, 1, {"train+val+test": 1}, 1)

    deduped, dropped = drop_duplicates(index, groups)
    assert sorted(d["path"] for d in dropped) == ["test/sad/copy.png", "val/happy/copy.png"]
    assert all(d["kept_split"] == "train" and d["conflicting_labels"] for d in dropped)
    assert len(deduped) == len(index) - 2
    assert {"train/happy/orig.png", "train/sad/t1.png", "train/sad/t2.png"} <= {r.path for r in deduped.records}
    assert deduped.meta["duplicates"] == {**summary, "policy": POLICY, "dropped": dropped}
    assert "earliest split" in POLICY and index.meta["duplicates"] == {**summary, "policy": None, "dropped": []}
    assert find_duplicates(deduped)[0]["cross_split"] is False

    by_pixels = find_duplicates(index, pixels=True)
    assert "val/happy/resaved.png" in by_pixels[0]["paths"]
    assert all("val/happy/resaved.png" not in g["paths"] for g in groups)


@pytest.mark.parametrize("dedupe", [False, True])
def test_build_index_and_cli_record_the_same_duplicates(tmp_path: Path, dedupe: bool) -> None:
    """``meta["duplicates"]`` is one thing: build_index's (from Python) is what ``index`` writes."""
    from click.testing import CliRunner

    from kerascv_emotion.cli import main

    pixels = _png(tmp_path / "data" / "train" / "a" / "x.png")
    _png(tmp_path / "data" / "test" / "a" / "y.png", pixels=pixels)
    _png(tmp_path / "data" / "val" / "a" / "z.png")
    index = build_index("folders", tmp_path / "data", dedupe=dedupe)
    result = CliRunner().invoke(main, ["index", str(tmp_path / "data"), "--out", str(tmp_path / "i.csv"),
                                       *(["--dedupe"] if dedupe else [])])
    assert result.exit_code == 0, result.output
    assert "exact duplicates: 1 group(s), 1 across splits, 0 with conflicting labels" in result.output
    written = read_index(tmp_path / "i.csv")
    assert written.meta["duplicates"] == index.meta["duplicates"]
    assert written.meta["duplicates"]["groups"] == 1
    assert [d["path"] for d in written.meta["duplicates"]["dropped"]] == (["test/a/y.png"] if dedupe else [])
    assert written.records == index.records and len(index) == 3 - dedupe


def test_duplicates_keep_earliest_split_when_train_has_no_copy(tmp_path: Path) -> None:
    _png(tmp_path / "train" / "a" / "other.png")
    shared = _png(tmp_path / "val" / "a" / "v.png")
    _png(tmp_path / "test" / "a" / "t.png", pixels=shared)
    index = build_index("folders", tmp_path)
    deduped, dropped = drop_duplicates(index, find_duplicates(index))
    assert [(d["path"], d["kept_split"], d["conflicting_labels"]) for d in dropped] == [("test/a/t.png", "val", False)]
    assert {r.path for r in deduped.records} == {"train/a/other.png", "val/a/v.png"}


def test_find_duplicates_names_missing_file(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "x.png")
    _png(tmp_path / "a" / "y.png")
    index = build_index("folders", tmp_path, val_fraction=0, test_fraction=0)
    (tmp_path / "a" / "y.png").unlink()
    with pytest.raises(DataError, match=r"y\.png.*does not exist"):
        find_duplicates(index)


# --- the shared real data sets (README counts) -------------------------------------------

@needs_shared
@pytest.mark.shared_data
def test_shared_fer2013_counts() -> None:
    index = build_index("fer2013", SHARED / "fer2013", test_fraction=0)
    counts = index.counts()
    assert counts["train"] == {"anger": 3995, "disgust": 436, "fear": 4097, "happy": 7215,
                               "neutral": 4965, "sad": 4830, "surprise": 3171}
    assert sum(counts["train"].values()) == 28_709
    assert sum(counts["val"].values()) == 3_589
    assert index.splits() == ["train", "val"]


@needs_shared
@pytest.mark.shared_data
def test_shared_fer2013_dedupe_leaves_no_cross_split_copy() -> None:
    index = build_index("fer2013", SHARED / "fer2013", test_fraction=0, classes=["disgust"])
    groups = find_duplicates(index)
    assert any(g["cross_split"] for g in groups)
    deduped, dropped = drop_duplicates(index, groups)
    assert {d["split"] for d in dropped} == {"val"}
    assert not any(g["cross_split"] for g in find_duplicates(deduped))


@needs_shared
@pytest.mark.shared_data
def test_shared_covid_counts_and_binary_mapping() -> None:
    index = build_index("covid", SHARED / "covid-xray", val_fraction=0, test_fraction=0)
    assert index.counts() == {"train": {"Covid": 111, "Normal": 70, "Viral Pneumonia": 70}}
    binary = build_index("covid", SHARED / "covid-xray", class_map={"Covid": "covid", "Normal": "normal"},
                         classes=["covid", "normal"])
    assert binary.class_names == ["covid", "normal"] and len(binary) == 181


@needs_shared
@pytest.mark.shared_data
def test_shared_ckplus_counts_and_subject_split() -> None:
    index = build_index("ckplus", SHARED / "ckplus48")
    total = {c: sum(index.counts()[s][c] for s in index.splits()) for c in index.class_names}
    assert total == {"anger": 135, "contempt": 54, "disgust": 177, "fear": 75, "happy": 207,
                     "sad": 84, "surprise": 249}
    assert len(index) == 981
    splits_of: dict[str, set[str]] = defaultdict(set)
    for r in index.records:
        splits_of[r.group].add(r.split)
    # CK+ has 123 subjects, but only 118 of them have emotion-labelled sequences (the 981 images)
    files = {p.name[:4] for p in (SHARED / "ckplus48").rglob("S*.png")}
    assert len(splits_of) == len(files) == index.meta["subjects"] == 118
    assert all(len(s) == 1 for s in splits_of.values())
