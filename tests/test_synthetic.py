"""Synthetic faces and X-rays: determinism, layout, splits, labels, valence/arousal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerascv_emotion.data import synthetic
from kerascv_emotion.data.index import SPLITS, read_index
from kerascv_emotion.data.synthetic import (
    CIRCUMPLEX,
    FACE_CLASSES,
    XRAY_CLASSES,
    generate_faces,
    generate_xrays,
)
from kerascv_emotion.errors import ConfigError


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("generate", [generate_faces, generate_xrays])
def test_same_seed_gives_identical_files(tmp_path: Path, generate) -> None:
    generate(tmp_path / "a", per_class=3, size=32, seed=7)
    generate(tmp_path / "b", per_class=3, size=32, seed=7)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert "index.csv" in a and "index.meta.json" in a
    assert a == b


@pytest.mark.parametrize("generate", [generate_faces, generate_xrays])
def test_different_seed_gives_different_images(tmp_path: Path, generate) -> None:
    generate(tmp_path / "a", per_class=3, size=32, seed=1)
    generate(tmp_path / "b", per_class=3, size=32, seed=2)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    pngs = [k for k in a if k.endswith(".png")]
    assert pngs and sorted(pngs) == sorted(k for k in b if k.endswith(".png"))
    assert all(a[k] != b[k] for k in pngs)


def test_faces_layout_modes_and_index(tmp_path: Path) -> None:
    index = generate_faces(tmp_path, per_class=3, size=32, seed=0)
    assert index.class_names == list(FACE_CLASSES)
    assert len(index) == 3 * len(FACE_CLASSES)
    assert index.root == tmp_path.resolve()
    assert index.meta == {"source": "synthetic-faces", "seed": 0, "size": 32, "per_class": 3,
                          "val_fraction": 0.15, "test_fraction": 0.15}
    assert {r.path for r in index.records} == {
        f"{c}/{c}_{i:05d}.png" for c in FACE_CLASSES for i in range(1, 4)
    }
    for record in index.records:
        with Image.open(index.resolve(record)) as img:
            assert img.format == "PNG" and img.mode == "RGB" and img.size == (32, 32)
            assert np.asarray(img).std() > 5  # a drawn picture, not a flat fill
    assert not list(tmp_path.rglob(".*"))  # no temporary files left behind


@pytest.mark.parametrize("classes", [("normal", "covid"), ("covid", "viral_pneumonia", "normal")])
def test_xrays_layout_modes_and_classes(tmp_path: Path, classes: tuple[str, ...]) -> None:
    index = generate_xrays(tmp_path, per_class=3, size=32, seed=0, classes=classes)
    assert index.class_names == list(classes)
    assert index.counts()["train"] == dict.fromkeys(classes, 3)  # 3 per class: all train
    assert index.meta["source"] == "synthetic-xrays"
    assert not index.has_valence_arousal
    for record in index.records:
        with Image.open(index.resolve(record)) as img:
            assert img.mode == "L" and img.size == (32, 32)
            assert np.asarray(img).std() > 5


def test_an_image_does_not_depend_on_per_class_or_the_class_list(tmp_path: Path) -> None:
    generate_xrays(tmp_path / "two", per_class=2, size=32, seed=3, classes=("normal", "covid"))
    generate_xrays(tmp_path / "three", per_class=3, size=32, seed=3, classes=XRAY_CLASSES)
    for name in ("normal/normal_00002.png", "covid/covid_00001.png"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "three" / name).read_bytes()


@pytest.mark.parametrize("generate", [generate_faces, generate_xrays])
def test_every_class_in_every_split(tmp_path: Path, generate) -> None:
    index = generate(tmp_path, per_class=10, size=32, seed=0)
    counts = index.counts()
    assert list(counts) == list(SPLITS)
    for split in SPLITS:
        assert all(n >= 1 for n in counts[split].values()), (split, counts[split])
    assert all(counts["train"][c] > counts["val"][c] for c in index.class_names)


def test_valence_arousal_range_and_quadrants(tmp_path: Path) -> None:
    index = generate_faces(tmp_path, per_class=10, size=32, seed=0)
    va = index.valence_arousal()
    assert va.shape == (80, 2)
    assert np.all(va >= -1) and np.all(va <= 1)
    labels = np.array([r.label for r in index.records])
    for name, (valence, arousal) in CIRCUMPLEX.items():
        mean = va[labels == name].mean(axis=0)
        if name == "neutral":
            assert np.all(np.abs(mean) < 0.1), mean
        else:
            assert np.sign(mean[0]) == np.sign(valence) and np.sign(mean[1]) == np.sign(arousal), (name, mean)
            # the intensity moves each face along its class's direction
            assert np.dot(mean, (valence, arousal)) > 0.2 * np.dot((valence, arousal), (valence, arousal))


def test_read_index_round_trip(tmp_path: Path) -> None:
    index = generate_faces(tmp_path, per_class=4, size=32, seed=5)
    back = read_index(tmp_path / "index.csv")
    assert back.root == index.root
    assert back.class_names == index.class_names
    assert back.records == index.records
    assert back.meta == index.meta


def test_interrupted_run_leaves_no_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate_xrays(tmp_path, per_class=2, size=32, seed=0)
    assert (tmp_path / "index.csv").is_file()
    calls = {"n": 0}
    real = synthetic.xrays._render_xray

    def failing(label: str, rng: np.random.Generator, size: int) -> Image.Image:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(label, rng, size)

    monkeypatch.setattr(synthetic.xrays, "_render_xray", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_xrays(tmp_path, per_class=2, size=32, seed=1)
    assert not (tmp_path / "index.csv").exists()
    assert not (tmp_path / "index.meta.json").exists()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda out: generate_xrays(out, classes=("normal", "pneumonia")), "pneumonia"),
        (lambda out: generate_xrays(out, classes=("normal", "normal")), "at most once"),
        (lambda out: generate_xrays(out, classes=()), "at least one"),
        (lambda out: generate_faces(out, per_class=0), "per_class"),
        (lambda out: generate_faces(out, size=8), "size"),
        (lambda out: generate_faces(out, val_fraction=0.5, test_fraction=0.5), "val_fraction"),
    ],
)
def test_bad_settings_raise_config_error(tmp_path: Path, call, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        call(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_synth_cli_defaults_are_the_generators() -> None:
    """`kerascv-emotion synth` and the workflow schema's `synthetic` show the generators'
    defaults, which faces and X-rays share."""
    import inspect

    import yaml
    from click.testing import CliRunner

    from kerascv_emotion.cli import main

    faces = inspect.signature(synthetic.generate_faces).parameters
    xrays = inspect.signature(synthetic.generate_xrays).parameters
    help_text = CliRunner().invoke(main, ["synth", "--help"], terminal_width=200).output
    schema_path = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    in_workflow = schema["properties"]["datasets"]["additionalProperties"]["properties"]["synthetic"]["properties"]
    for name in ("per_class", "size", "seed", "val_fraction", "test_fraction"):
        assert faces[name].default == xrays[name].default, name
        assert f"--{name.replace('_', '-')}" in help_text and f"[default: {faces[name].default}]" in help_text, name
        if name in in_workflow:
            assert in_workflow[name]["default"] == faces[name].default, name
