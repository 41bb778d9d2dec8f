"""The run folder (kerascv_emotion.runs): the lock, resuming only with the same settings,
stale evaluations removed, paths that work from any directory, --monitor checked early,
and the cache folder's environment variable."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import start_paused_cli

from kerascv_emotion import runs
from kerascv_emotion.errors import RunFolderError

SETTINGS = {"arch": "vgg", "epochs": 2, "workers": 1}


def _hold_lock(run: Path) -> subprocess.Popen:
    """Another process that claims ``run`` and holds it until killed."""
    code = ("import sys, time\nfrom kerascv_emotion import runs\n"
            f"with runs.claim({str(run)!r}, {SETTINGS!r}):\n    print('held', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_claim_is_refused_naming_the_holder_then_succeeds(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = _hold_lock(run)
    try:
        with pytest.raises(RunFolderError) as err, runs.claim(run, SETTINGS):
            pass
        message = str(err.value)
        assert "\n" not in message and f"pid {holder.pid}" in message and "in use" in message
    finally:
        holder.kill()
        holder.wait()
    with runs.claim(run, SETTINGS) as work:  # the killed holder's lock went with it
        assert work == run / "work" and (run / runs.LOCK).is_file()
    assert not (run / runs.LOCK).exists()


def test_resume_only_with_the_same_settings_or_restart(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), runs.claim(run, SETTINGS) as work:
        (work / "history-train.csv").write_text("epoch\n0\n")  # resumable state
        raise KeyboardInterrupt  # killed
    with runs.claim(run, {**SETTINGS, "workers": 4}) as work:  # loader threads change nothing trained
        assert (work / "history-train.csv").is_file()
        (work / "history-train.csv").write_text("epoch\n0\n1\n")
        with pytest.raises(RuntimeError):
            raise RuntimeError("killed again")
    with pytest.raises(RunFolderError, match=r"changed: epochs.*--restart") as err, \
            runs.claim(run, {**SETTINGS, "epochs": 3}):
        pass
    assert "\n" not in str(err.value) and (run / "work" / "history-train.csv").is_file()
    with runs.claim(run, {**SETTINGS, "epochs": 3}, restart=True) as work:
        assert not (work / "history-train.csv").exists()
        assert json.loads((work / runs.STATE).read_text())["epochs"] == 3


def test_a_failure_before_any_state_leaves_no_folder(tmp_path: Path) -> None:
    run = tmp_path / "new" / "run"
    with pytest.raises(ValueError), runs.claim(run, SETTINGS):
        raise ValueError("bad data")
    assert not (tmp_path / "new").exists()


def test_finish_records_the_best_epoch_and_removes_the_old_evaluation(tmp_path: Path) -> None:
    run = tmp_path / "run"
    for stale in (runs.eval_dir(run, "test") / "metrics.json", runs.report_dir(run) / "report.html"):
        stale.parent.mkdir(parents=True)
        stale.write_text("old model's")
    with runs.claim(run, SETTINGS) as work:
        (work / "history-train.csv").write_text("epoch,val_loss,val_macro_f1\n0,1.0,0.2\n1,0.9,0.5\n2,0.8,0.5\n")
        (work / "best.keras").write_bytes(b"model")
        runs.finish(run, work, work / "best.keras", ["train"], {"monitor": "val_macro_f1"}, ["a", "b"], [])
    config = runs.read_json(run / runs.CONFIG)  # a sketch of a config: read_config wants image settings
    assert (config["best_epoch"], config["best_value"]) == (1, 0.5)  # the first of equal values, as Keras keeps
    assert not (run / "eval").exists() and not runs.report_dir(run).exists() and not (run / "work").exists()
    assert runs.best_of([{"epoch": "0", "val_loss": "NA"}, {"epoch": "1", "val_loss": "0.7"},
                         {"epoch": "2", "val_loss": "0.9"}], "val_loss") == (1, 0.7)


def test_the_cache_variable_is_honoured_by_training(tiny_faces: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from kerascv_emotion.data.cache import CACHE_ENV
    from kerascv_emotion.settings import TrainSettings
    from kerascv_emotion.training import load_data

    beside_index = tiny_faces.parent / ".cache"
    before = set(beside_index.glob("*")) if beside_index.is_dir() else set()  # other tests' caches
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env-cache"))
    load_data(TrainSettings(arch="vgg", index=str(tiny_faces), image_size=24))
    assert len(list((tmp_path / "env-cache").glob("train-24x24x3-*.npy"))) == 1
    assert (set(beside_index.glob("*")) if beside_index.is_dir() else set()) == before


def _cli(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "kerascv_emotion", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_concurrent_trains_retrain_and_evaluate_elsewhere(tiny_faces: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train = ["train", "--index", str(tiny_faces), "--arch", "alexnet", "--image-size", "32", "--epochs", "2",
             "--batch-size", "8", "--out", str(run)]
    typo = _cli(*train, "--monitor", "val_macro_f")
    _, err = typo.communicate(timeout=300)
    assert typo.returncode == 1 and err.strip().count("\n") == 0 and "monitor='val_macro_f'" in err, err
    assert not run.exists()  # refused before training

    first = start_paused_cli(train, 1, tmp_path)  # holds the lock, in its second epoch, until released
    assert first.stdin is not None
    try:
        second = _cli(*train)
        _, err = second.communicate(timeout=300)
    except BaseException:
        first.kill()
        raise
    finally:
        first.stdin.close()
    assert first.wait(timeout=600) == 0, (tmp_path / "paused.log").read_text()[-3000:]  # unharmed
    assert second.returncode == 1 and err.strip().startswith("Error:") and f"in use by pid {first.pid} " in err, err
    assert err.strip().count("\n") == 0
    with open(run / "history.csv", newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1"]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    evaluate = _cli("evaluate", os.path.relpath(run, elsewhere), "--bootstrap", "0", cwd=elsewhere)
    assert evaluate.wait(timeout=300) == 0, evaluate.communicate()[1]
    assert runs.eval_dir(run, "test").is_dir()

    third = _cli(*train, "--epochs", "1")
    assert third.wait(timeout=600) == 0, third.communicate()[1]
    assert not (run / "eval").exists()  # the old model's evaluation is gone with it
    assert runs.read_config(run)["epochs"] == 1 and Path(runs.read_config(run)["index"]).is_absolute()
