"""Faults that once gave a wrong answer with exit status 0 (issue 18): NaN models, tune's
first epoch, classes without images, a stale image cache. Each row states its input, the
exit status and the words of the one line it must print, and checks that nothing was lost
or left behind (no half file, no NaN ``model.keras``, no ``work/`` state)."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from kerascv_emotion.cli import main

OLD_MODEL = b"the model of an earlier run"


def _train_args(index: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--index", str(index), "--arch", "alexnet", "--image-size", "32", "--epochs", "1",
            "--batch-size", "4", "--precise-bn-images", "0", "--augment", "none", "--out", str(out), *extra]


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporaries and resume state under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.startswith(".") or p.name == "work")


def _nan_run(run: Path, dest: Path) -> Path:
    """A copy of the finished ``run`` whose model's weights are all NaN (without the run's
    evaluation and report: other tests evaluate the shared run in place)."""
    from kerascv_emotion.runs import load_model

    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("eval", "report"))
    model = load_model(dest / "model.keras")
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    model.save(dest / "model.keras")
    return dest


# ---------------------------------------------------------------- CLI cases


@dataclass
class Case:
    """``setup(tmp_path, data)`` returns the CLI arguments; ``check(tmp_path)`` asserts what must
    (not) be on disk afterwards. ``data`` holds the ``faces`` index and a finished ``run``."""

    setup: Callable[[Path, dict[str, Path]], list[str]]
    exit_code: int
    words: list[str]
    check: Callable[[Path], None]


def _no_run_folder(tmp: Path) -> None:
    assert not (tmp / "run").exists()


def _over_an_earlier_run(tmp: Path, data: dict[str, Path], *extra: str) -> list[str]:
    (tmp / "run").mkdir()
    (tmp / "run" / "model.keras").write_bytes(OLD_MODEL)
    return _train_args(data["faces"], tmp / "run", *extra)


def _earlier_model_kept(tmp: Path) -> None:
    assert (tmp / "run" / "model.keras").read_bytes() == OLD_MODEL
    assert _leftovers(tmp / "run") == [] and sorted(p.name for p in (tmp / "run").iterdir()) == ["model.keras"]


def _nan_predict(tmp: Path, data: dict[str, Path]) -> list[str]:
    run = _nan_run(data["run"], tmp / "nan")
    return ["predict", str(run), str(data["faces"].parent / "anger"), "--out", str(tmp / "out" / "p.csv")]


def _nan_evaluate(tmp: Path, data: dict[str, Path]) -> list[str]:
    return ["evaluate", str(_nan_run(data["run"], tmp / "nan")), "--bootstrap", "0"]


def _nothing_written(tmp: Path) -> None:
    assert not (tmp / "out").exists() and not (tmp / "nan" / "eval").exists()
    assert _leftovers(tmp / "nan") == []


CLI_CASES: dict[str, Case] = {
    # non-finite settings are refused before anything is made
    "lr_inf": Case(lambda t, d: _train_args(d["faces"], t / "run", "--lr", "inf"), 1,
                   ["Error:", "learning_rate=inf", "finite positive"], _no_run_folder),
    "lr_nan": Case(lambda t, d: _train_args(d["faces"], t / "run", "--lr", "nan"), 1,
                   ["Error:", "learning_rate=nan", "finite positive"], _no_run_folder),
    "weight_decay_nan": Case(lambda t, d: _train_args(d["faces"], t / "run", "--weight-decay", "nan"), 1,
                             ["Error:", "weight_decay=nan", "finite"], _no_run_folder),
    "tune_head_lr_inf": Case(lambda t, d: ["tune", str(d["run"]), "--index", str(d["faces"]), "--out",
                                           str(t / "run"), "--head-lr", "inf"], 1,
                             ["Error:", "head_learning_rate=inf", "finite positive"], _no_run_folder),
    # a diverging run stops at the first NaN loss, exits 1 and keeps no model nor state
    "diverging_lr": Case(lambda t, d: _train_args(d["faces"], t / "run", "--lr", "1e30"), 1,
                         ["Error:", "training diverged", "nan", "epoch 1", "learning_rate=1e+30"], _no_run_folder),
    "diverging_over_earlier_run": Case(lambda t, d: _over_an_earlier_run(t, d, "--lr", "1e30"), 1,
                                       ["Error:", "training diverged", "learning_rate=1e+30"], _earlier_model_kept),
    # a NaN model is refused by predict and evaluate, and nothing is written
    "predict_nan_model": Case(_nan_predict, 1, ["Error:", "model.keras", "NaN or infinite outputs", "6 of 6"],
                              _nothing_written),
    "evaluate_nan_model": Case(_nan_evaluate, 1, ["Error:", "model.keras", "NaN or infinite outputs"],
                               _nothing_written),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_fault(name: str, tmp_path: Path, tiny_faces: Path, tiny_run: Path) -> None:
    case = CLI_CASES[name]
    args = case.setup(tmp_path, {"faces": tiny_faces, "run": tiny_run})
    result = CliRunner().invoke(main, ["-q", *args])
    assert result.exit_code == case.exit_code, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for word in case.words:
        assert word in errors[0], (word, errors[0])
    case.check(tmp_path)


# ---------------------------------------------------------------- library cases


def test_checkpoint_never_saves_a_non_finite_monitor(tmp_path: Path) -> None:
    """Keras's ModelCheckpoint saves the first epoch whatever its value; ours skips NaN."""
    import keras

    from kerascv_emotion.callbacks import AtomicModelCheckpoint

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checkpoint = AtomicModelCheckpoint(tmp_path / "best.keras", monitor="val_macro_f1", mode="max",
                                       save_best_only=True)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_macro_f1": float("nan")})
    assert not (tmp_path / "best.keras").exists() and _leftovers(tmp_path) == []
    checkpoint.on_epoch_end(1, {"val_macro_f1": 0.5})
    assert (tmp_path / "best.keras").is_file()


def test_finish_never_promotes_a_run_without_a_finite_monitor(tmp_path: Path) -> None:
    from kerascv_emotion import runs
    from kerascv_emotion.errors import DataError

    work = tmp_path / "run" / "work"
    work.mkdir(parents=True)
    (work / "history-train.csv").write_text("epoch,loss,val_macro_f1\n0,nan,nan\n")
    (work / "best-train.keras").write_bytes(b"a NaN model")
    with pytest.raises(DataError, match="no epoch had a finite val_macro_f1"):
        runs.finish(tmp_path / "run", work, work / "best-train.keras", ["train"], {"monitor": "val_macro_f1"},
                    ["a", "b"], [])
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["work"]  # nothing promoted or merged


def _history(run: Path) -> list[dict[str, Any]]:
    with open(run / "history.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_tune_history_describes_the_model_it_trains(tiny_faces: Path, tmp_path: Path) -> None:
    """Tune's epoch 0 once replayed the batches and dropout masks its source run's epoch 0 had
    fitted the model to (one seed for both), and logged a memorised accuracy of 1.0."""
    from kerascv_emotion.finetune import tune
    from kerascv_emotion.settings import TrainSettings, TuneSettings
    from kerascv_emotion.training import stream_seed, train

    plain = {"augment": None, "class_weight": None, "precise_bn_images": 0, "batch_size": 32}
    base = train(TrainSettings(arch="alexnet", index=str(tiny_faces), image_size=32, epochs=1, **plain),
                 tmp_path / "base", verbose=0)
    tuned = tune(TuneSettings.create(str(base), str(tiny_faces), head_epochs=1, finetune_epochs=0, **plain),
                 tmp_path / "tuned", verbose=0)
    first = _history(tuned)[0]
    source = _history(base)[0]
    assert float(first["accuracy"]) < 0.9 and float(first["loss"]) > 0.5 * float(source["loss"]), (first, source)
    from kerascv_emotion.runs import load_model

    model = load_model(base / "model.keras")
    assert stream_seed(0, model.weights) == json.loads((tuned / "config.json").read_text())["stream_seed"] != 0
    assert stream_seed(0) == 0
    model.save(tmp_path / "again.keras")  # the same weights saved again: other file bytes, the same seed
    assert (tmp_path / "again.keras").read_bytes() != (base / "model.keras").read_bytes()
    assert stream_seed(0, load_model(tmp_path / "again.keras").weights) == stream_seed(0, model.weights)
    model.weights[0].assign(model.weights[0] + 1.0)  # other weights: another seed
    assert stream_seed(0, model.weights) != stream_seed(0, load_model(base / "model.keras").weights)


# ---------------------------------------------------------------- the image cache


def _faces_copy(tiny_faces: Path, dest: Path) -> Path:
    shutil.copytree(tiny_faces.parent, dest, ignore=shutil.ignore_patterns(".cache"))
    return dest / tiny_faces.name


def _black(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as img:
        size = img.size
    Image.new("RGB", size).save(path)


def _hide(path: Path) -> None:
    path.rename(path.with_name(f"moved-{path.name}"))


def _restore(path: Path) -> None:
    path.with_name(f"moved-{path.name}").rename(path)


@dataclass
class CacheCase:
    """``before(path)`` runs before the first load (None: nothing), ``after(path)`` between the
    loads, on the first test image ``path``; the second load must log ``words`` in one line,
    decode ``decoded`` images, and return ``n`` images, the first all black when ``black``."""

    before: Callable[[Path], None] | None
    after: Callable[[Path], None]
    words: list[str]
    decoded: int
    n: int
    black: bool = False


CACHE_CASES = {
    # an image replaced in place is decoded again; the unchanged ones are copied
    "replaced_in_place": CacheCase(None, _black, ["1 of 16 images of split 'test' changed on disk",
                                                  "decoding them again"], 1, 16, black=True),
    # an image missing at the build is picked up once it is back
    "restored_after_missing": CacheCase(_hide, _restore, ["1 of 16 images", "changed on disk"], 1, 16),
    # an image removed since the build is left out, and said so
    "removed_since_build": CacheCase(None, _hide, ["1 of 16 images", "changed on disk"], 1, 15),
    # nothing changed: nothing decoded, nothing said
    "unchanged": CacheCase(None, lambda path: None, [], 0, 16),
}


@pytest.mark.parametrize("name", list(CACHE_CASES))
def test_cache_follows_its_sources(name: str, tiny_faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   caplog: pytest.LogCaptureFixture) -> None:
    from kerascv_emotion.data import cache

    case = CACHE_CASES[name]
    index = _faces_copy(tiny_faces, tmp_path / "faces")
    first = index.parent / next(line.split(",")[0] for line in index.read_text().splitlines() if ",test," in line)
    if case.before is not None:
        case.before(first)
    cache.load_split(index, "test", 32, progress=False)
    case.after(first)
    decoded: list[Path] = []

    def counting_load_image(path: Path, *args: Any) -> np.ndarray:
        decoded.append(path)
        return load_image(path, *args)

    load_image = cache.load_image
    monkeypatch.setattr(cache, "load_image", counting_load_image)
    caplog.clear()
    split = cache.load_split(index, "test", 32, progress=False)
    lines = [r.getMessage() for r in caplog.records if "changed on disk" in r.getMessage()]
    assert len(lines) == (1 if case.words else 0), lines
    for word in case.words:
        assert word in lines[0], (word, lines[0])
    assert len(decoded) == case.decoded and len(split) == case.n
    assert (split.images[0].max() == 0) == case.black
    assert _leftovers(index.parent / ".cache") == []


def test_refresh_cache_decodes_everything_again(tiny_faces: Path, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from kerascv_emotion.data.cache import load_split

    index = _faces_copy(tiny_faces, tmp_path / "faces")
    built = load_split(index, "test", 32, progress=False).cache_file
    inode = built.stat().st_ino
    assert load_split(index, "test", 32, progress=False).cache_file.stat().st_ino == inode  # reused
    with caplog.at_level(logging.INFO, logger="kerascv_emotion.data.cache"):
        assert load_split(index, "test", 32, progress=False, refresh=True).cache_file.stat().st_ino != inode
    assert any("decoding every image of split 'test' again" in r.getMessage() for r in caplog.records)


def test_refresh_cache_is_one_option_of_train_tune_and_evaluate() -> None:
    from kerascv_emotion.cli import main

    for command in ("train", "tune", "evaluate"):
        options = [o for o in main.commands[command].params if o.name == "refresh_cache"]
        assert len(options) == 1 and options[0].is_flag, command


# ---------------------------------------------------------------- classes without images


def _index_variant(index: Path, dest: Path, drop: Callable[[list[str]], bool], extra_class: str | None = None) -> Path:
    """A copy of ``index`` (root made absolute) without the rows ``drop`` picks, and with
    ``extra_class`` appended to its class names."""
    import json

    dest.mkdir(parents=True)
    meta = json.loads(index.with_name(index.stem + ".meta.json").read_text())
    meta["root"] = str((index.parent / meta["root"]).resolve())
    meta["class_names"] += [extra_class] if extra_class else []
    (dest / "index.meta.json").write_text(json.dumps(meta))
    header, *rows = index.read_text().splitlines()
    (dest / "index.csv").write_text("\n".join([header, *(r for r in rows if not drop(r.split(",")))]) + "\n")
    return dest / "index.csv"


@dataclass
class ClassCase:
    """Rows to drop (``[path, split, label, ...]``) and a class to add; the warning's words and
    the classes ``val_macro_f1`` must average."""

    drop: Callable[[list[str]], bool]
    extra_class: str | None
    words: list[str]
    averaged: int


CLASS_CASES = {
    "no_training_images": ClassCase(lambda r: r[1] == "train" and r[2] != "anger", None,
                                    ["7 of 8 classes have no usable training images", "contempt", "surprise",
                                     "cannot learn"], 8),
    "class_without_any_image": ClassCase(lambda r: False, "pride",
                                         ["1 of 9 classes have no images in the index at all", "pride",
                                          "class_names"], 8),
    "no_validation_images": ClassCase(lambda r: r[1] == "val" and r[2] == "fear", None,
                                      ["1 of 8 classes have no usable validation images", "fear",
                                       "val_macro_f1 averages the 7 classes present"], 7),
}


@pytest.mark.parametrize("name", list(CLASS_CASES))
def test_missing_classes_are_said_and_not_counted_as_zero(name: str, tiny_faces: Path, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    case = CLASS_CASES[name]
    index = _index_variant(tiny_faces, tmp_path / "idx", case.drop, case.extra_class)
    result = CliRunner().invoke(main, _train_args(index, tmp_path / "run", "--cache-dir", str(tmp_path / "cache")))
    assert result.exit_code == 0, (result.output, result.exception)
    warnings = [r.getMessage() for r in caplog.records if "classes have no" in r.getMessage()]
    assert len(warnings) == 1, warnings
    for word in case.words:
        assert word in warnings[0], (word, warnings[0])
    in_val = {r.split(",")[2] for r in index.read_text().splitlines()[1:] if r.split(",")[1] == "val"}
    row = _history(tmp_path / "run")[0]
    assert len(in_val) == case.averaged
    assert float(row["val_macro_f1"]) == pytest.approx(np.mean([float(row[f"val_f1/{c}"]) for c in in_val]))
    assert _leftovers(tmp_path / "run") == []


def test_val_macro_f1_averages_the_classes_present() -> None:
    """A class without validation images has no F1; scikit-learn's macro F1 counts it as 0."""
    from kerascv_emotion.callbacks.per_class import classification_logs
    from kerascv_emotion.metrics import classification_metrics

    y = np.array([0, 1, 1, 0])  # class 2 absent
    metrics = classification_metrics(y, np.eye(3)[y], ["a", "b", "c"])
    assert metrics["macro_avg"]["f1"] == pytest.approx(2 / 3)
    assert classification_logs(metrics)["val_macro_f1"] == 1.0
