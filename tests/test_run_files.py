"""Run folders a user broke or mixed up, and the inputs `predict` and `export` must not harm: an
unreadable or incomplete config.json, a model.keras from another run, an unfinished run given as
the first argument, a predict that predicts nothing, outputs that would overwrite an input, an
export without its extra or without the run's own index (a preset's)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from kerascv_emotion.cli import main
from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.runs import CONFIG, MODEL, load_run, read_config


def _copy(run: Path, tmp_path: Path, name: str = "run") -> Path:
    """A copy of ``run`` without its evaluations, reports and exports."""
    copy = tmp_path / name
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("eval", "report", "export"))
    return copy


def _fails(*args: str) -> str:
    """The error line of a CLI call that must fail: exit status 1, one ``Error:`` line, no traceback."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


@pytest.mark.parametrize(("text", "says"), [
    ("{bad json", "is unreadable (JSONDecodeError"),
    ("", "is unreadable (JSONDecodeError"),
    ("[1, 2]", "holds a JSON list, not an object"),
])
def test_an_unreadable_config_is_one_line_naming_the_file(tiny_run: Path, tmp_path: Path, text: str,
                                                          says: str) -> None:
    run = _copy(tiny_run, tmp_path)
    (run / CONFIG).write_text(text)
    with pytest.raises(DataError) as raised:
        read_config(run)
    assert str(raised.value).startswith(f"{run / CONFIG} {says}")
    Image.new("RGB", (40, 40), (120, 90, 60)).save(tmp_path / "face.png")
    out = _fails("predict", "--run", str(run), str(tmp_path / "face.png"), "--out", str(tmp_path / "p.csv"))
    assert str(run / CONFIG) in out


@pytest.mark.parametrize(("key", "value", "says"), [
    ("output_names", None, "has output_names=None, not a list of names"),
    ("image_size", "32", "has image_size='32', not a positive integer"),
    ("channels", 0, "has channels=0, not a positive integer"),
])
def test_a_config_without_what_every_use_reads_is_refused(tiny_run: Path, tmp_path: Path, key: str,
                                                          value: object, says: str) -> None:
    run = _copy(tiny_run, tmp_path)
    config = json.loads((run / CONFIG).read_text())
    (run / CONFIG).write_text(json.dumps({**config, key: value}))
    with pytest.raises(DataError, match=says):
        read_config(run)


@pytest.mark.parametrize(("key", "change"), [("image_size", 16), ("channels", 1),
                                             ("output_names", lambda names: names[:3])])
def test_a_model_from_another_run_is_refused_by_every_user_of_the_run(tiny_run: Path, tmp_path: Path,
                                                                      key: str, change: object) -> None:
    run = _copy(tiny_run, tmp_path)
    config = json.loads((run / CONFIG).read_text())
    config[key] = change(config[key]) if callable(change) else change
    (run / CONFIG).write_text(json.dumps(config))
    with pytest.raises(DataError, match="the two files are from different runs"):
        load_run(run)
    Image.new("RGB", (40, 40), (120, 90, 60)).save(tmp_path / "face.png")
    for args in (["predict", "--run", str(run), str(tmp_path / "face.png"), "--out", str(tmp_path / "p.csv")],
                 ["evaluate", str(run), "--bootstrap", "0"]):
        assert "the two files are from different runs" in _fails(*args)


def test_an_unfinished_run_given_first_is_named_not_replaced_by_the_preset(tiny_run: Path, tmp_path: Path) -> None:
    run = _copy(tiny_run, tmp_path)
    (run / MODEL).unlink()
    Image.new("RGB", (40, 40), (120, 90, 60)).save(tmp_path / "face.png")
    out = _fails("predict", str(run), str(tmp_path / "face.png"), "--out", str(tmp_path / "p.csv"))
    assert f"{run} is not a finished run" in out and not (tmp_path / "p.csv").exists()


def test_a_predict_that_predicts_nothing_fails_and_writes_nothing(tiny_run: Path, tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_text("not a video")
    Image.new("RGB", (160, 120), (90, 140, 200)).save(tmp_path / "sky.png")
    csv_path = tmp_path / "p.csv"
    args = ["predict", "--run", str(tiny_run), str(tmp_path / "clip.mp4"), str(tmp_path / "sky.png"),
            "--detect-faces", "--out", str(csv_path)]
    assert _fails(*args).startswith("Error: nothing predicted: 1 input file(s) skipped, 1 without a face")
    output = CliRunner().invoke(main, args).output
    assert f"skipped {tmp_path / 'clip.mp4'}" in output and f"no face: {tmp_path / 'sky.png'}" in output
    assert not csv_path.exists()


def test_a_folder_of_files_that_are_no_images_is_listed_then_nothing_predicted(tiny_run: Path,
                                                                                 tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image")
    result = CliRunner().invoke(main, ["predict", "--run", str(tiny_run), str(folder), "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 1, result.output
    assert f"skipped {folder / 'notes.txt'}" in result.output
    assert "Error: nothing predicted: 1 input file(s) skipped, 0 without a face" in result.output
    assert not (tmp_path / "p.csv").exists()


def test_predict_never_overwrites_an_input(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kerascv_emotion.predict

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (40, 40), (120, 90, 60)).save(photos / "face.png")
    original = (photos / "face.png").read_bytes()
    with monkeypatch.context() as patch:  # refused before any work: nothing is predicted
        patch.setattr(kerascv_emotion.predict, "predict", lambda *a, **k: pytest.fail("predicted"))
        out = _fails("predict", "--run", str(tiny_run), str(photos), "--out", str(photos / "face.png"))
    assert "--out" in out and "is one of the inputs" in out
    (photos / "notes.csv").write_text("mine")  # not an image: skipped by the folder walk, still an input
    assert "is one of the inputs" in _fails("predict", "--run", str(tiny_run), str(photos), "--out",
                                            str(photos / "notes.csv"))
    assert (photos / "notes.csv").read_text() == "mine"
    result = CliRunner().invoke(main, ["predict", "--run", str(tiny_run), str(photos), "--out",
                                       str(tmp_path / "p.csv"), "--annotate", str(photos)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (photos / "face.png").read_bytes() == original
    with Image.open(photos / "face-2.png") as copy:
        assert copy.size == (40, 40)


@pytest.mark.parametrize("command", ["evaluate", "export", "distill"])
def test_an_index_of_other_classes_is_one_line_naming_both(tiny_run: Path, tiny_xrays: Path, tmp_path: Path,
                                                            command: str) -> None:
    args = {"evaluate": ["evaluate", str(tiny_run), "--index", str(tiny_xrays), "--split", "val"],
            "export": ["export", str(tiny_run), "--format", "litert", "--index", str(tiny_xrays),
                       "--out", str(tmp_path / "x")],
            "distill": ["distill", str(tiny_run), "--arch", "mobilenet", "--index", str(tiny_xrays),
                        "--image-size", "32", "--epochs", "1", "--out", str(tmp_path / "student")]}[command]
    role = "teacher" if command == "distill" else "run"
    out = _fails(*args)
    assert out.startswith(f"Error: index {tiny_xrays} has classes ['normal', 'covid'], but {role} "
                          f"{tiny_run.resolve() if command == 'distill' else tiny_run} predicts ")
    assert out.endswith("give an index of the same classes")
    assert not (tmp_path / "x").exists() and not (tmp_path / "student").exists()  # refused before any work


def test_a_regression_teacher_is_refused(tiny_run: Path, tiny_faces: Path, tmp_path: Path) -> None:
    teacher = _copy(tiny_run, tmp_path, "teacher")
    config = json.loads((teacher / CONFIG).read_text())
    (teacher / CONFIG).write_text(json.dumps({**config, "task": "regression", "output_names": ["valence", "arousal"]}))
    out = _fails("distill", str(teacher), "--arch", "mobilenet", "--index", str(tiny_faces), "--image-size", "32",
                 "--epochs", "1", "--out", str(tmp_path / "student"))
    assert out == f"Error: teacher {teacher.resolve()} is a regression run; distill from a classification run"
    assert not (tmp_path / "student").exists()


def test_an_export_without_its_extra_says_what_to_install(tiny_run: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from kerascv_emotion.export import export_run

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tf2onnx" else find_spec(name, *a))
    with pytest.raises(ConfigError, match=r"needs tf2onnx, which is not installed: pip install 'kerascv_emotion\[export\]'"):
        export_run(tiny_run, "onnx", out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_a_run_away_from_its_index_exports_with_another(tiny_run: Path, tmp_path: Path) -> None:
    """A preset's situation: config.json names an index on another machine."""
    run = _copy(tiny_run, tmp_path)
    config = json.loads((run / CONFIG).read_text())
    index = config["index"]
    (run / CONFIG).write_text(json.dumps({**config, "index": str(tmp_path / "elsewhere" / "index.csv")}))
    out = _fails("export", str(run), "--format", "litert", "--out", str(tmp_path / "x"))
    assert "which is not on this machine" in out and "give --index" in out
    result = CliRunner().invoke(main, ["export", str(run), "--format", "litert", "--out", str(tmp_path / "x"),
                                       "--index", index], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "x" / "export.json").read_text())
    assert report["passed"] is True and report["index"] == str(Path(index).resolve())
