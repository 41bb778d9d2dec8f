"""`evaluate RUN --data FOLDER`: a new labelled folder (test-only layout), classes matched to
the run's by name; the metrics equal those of the same images through an index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerascv_emotion.cli import main
from kerascv_emotion.data.index import DatasetIndex, IndexRecord, read_index
from kerascv_emotion.data.readers.folders import labelled_test_index
from kerascv_emotion.errors import DataError

_RUN_SPECIFIC = ("index", "inference", "notes", "bootstrap")


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _copy_test_split(index_csv: Path, folder: Path, drop: str) -> list[IndexRecord]:
    """Copy the test images (less class ``drop``) into ``folder/test/<class>/``; returns
    records of the copies, in the folder's own order."""
    index = read_index(index_csv)
    for rec in index.records:
        if rec.split == "test" and rec.label != drop:
            target = folder / "test" / rec.label / Path(rec.path).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(index.resolve(rec), target)
    copied, missing = labelled_test_index(folder, index.class_names)
    assert missing == [drop]
    return copied.records


def test_data_folder_metrics_equal_index_metrics(tiny_run: Path, tiny_faces: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERASCV_EMOTION_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "new_set"
    records = _copy_test_split(tiny_faces, data, drop="contempt")
    out = _invoke("evaluate", str(tiny_run), "--data", str(data), "--bootstrap", "50")
    assert "note: classes without images" in out and "contempt" in out
    by_folder = json.loads((tiny_run / "eval" / "data-new_set" / "metrics.json").read_text())
    class_names = json.loads((tiny_run / "class_names.json").read_text())
    # the same images (same order) through an index
    DatasetIndex(data / "test", class_names, records).write(tmp_path / "same.csv")
    _invoke("evaluate", str(tiny_run), "--index", str(tmp_path / "same.csv"), "--bootstrap", "50")
    by_index = json.loads((tiny_run / "eval" / "test" / "metrics.json").read_text())
    assert by_folder["n"] == len(records) == 14
    for key in set(by_index) - set(_RUN_SPECIFIC):
        assert by_folder[key] == by_index[key], key
    assert by_folder["bootstrap"]["accuracy"] == by_index["bootstrap"]["accuracy"]


def test_unknown_class_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "happy").mkdir()
    (tmp_path / "grumpy").mkdir()
    with pytest.raises(DataError, match=r"\['grumpy'\] are not among the model's classes"):
        labelled_test_index(tmp_path, ["happy", "sad"])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "train").mkdir()
    with pytest.raises(DataError, match="test/<class>/\\* only"):
        labelled_test_index(tmp_path / "other", ["happy"])


def test_unknown_class_is_a_one_line_cli_error(tiny_run: Path, tmp_path: Path) -> None:
    (tmp_path / "data" / "grumpy").mkdir(parents=True)
    result = CliRunner().invoke(main, ["evaluate", str(tiny_run), "--data", str(tmp_path / "data")])
    assert result.exit_code == 1 and "grumpy" in result.output and "Traceback" not in result.output


def test_a_folder_of_the_same_name_replaces_an_evaluation_with_a_warning(
        tiny_run: Path, tiny_faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """RUN/eval/data-<name> is keyed by the folder's name: a second folder of that name replaces
    the first one's evaluation, and says so."""
    monkeypatch.setenv("KERASCV_EMOTION_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("eval", "report", "export"))
    site_a, site_b = tmp_path / "a" / "test_set", tmp_path / "b" / "test_set"
    for folder in (site_a, site_b):
        _copy_test_split(tiny_faces, folder, drop="contempt")
    with caplog.at_level("WARNING", logger="kerascv_emotion.evaluation"):
        _invoke("evaluate", str(run), "--data", str(site_a), "--bootstrap", "0")
        _invoke("evaluate", str(run), "--data", str(site_a), "--bootstrap", "0")  # the same folder again
        assert "held the evaluation of" not in caplog.text
        _invoke("evaluate", str(run), "--data", str(site_b), "--bootstrap", "0")
    assert f"held the evaluation of {site_a}, which this evaluation of {site_b} replaces" in caplog.text
