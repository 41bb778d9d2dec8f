"""Faults a new user meets (issue 18, second half): one row per case, each stating the
command, its exit status, the words its one line must (and must not) hold, and what must
be on disk afterwards (nothing lost, nothing left behind). Every CLI row also fails on a
warning raised from a library's own code (site-packages), such as Pillow's or Keras's."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from conftest import tiny_default_config
from test_bad_input import _copy_index, _enospc, _erofs_mkstemp, _hidden_temps, _train_args

from kerascv_emotion.cli import main

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Env:
    """What a row's setup may use: its folder, a monkeypatch, an exit stack (held while the
    command runs) and the session's fixtures by name (``fixture("tiny_run")``)."""

    tmp: Path
    mp: pytest.MonkeyPatch
    stack: contextlib.ExitStack
    fixture: Callable[[str], Any]


@dataclass
class Fault:
    """``setup(env)`` returns the command's arguments (``kerascv-emotion`` ones, or Snakemake's
    when ``snakemake``); ``check(tmp)`` asserts what is on disk afterwards."""

    setup: Callable[[Env], list[str]]
    exit_code: int
    words: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    check: Callable[[Path], None] | None = None
    snakemake: bool = False


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    library_warnings: list[str]


# ---------------------------------------------------------------- helpers


def _image(env: Env) -> Path:
    """One 32 px synthetic face of ``tiny_faces``."""
    return sorted(env.fixture("tiny_faces").parent.rglob("*.png"))[0]


def _run_copy(env: Env) -> Path:
    """A copy of ``tiny_run`` (without eval/ and export/) that a row may write into."""
    return Path(shutil.copytree(env.fixture("tiny_run"), env.tmp / "run",
                                ignore=shutil.ignore_patterns("eval", "export")))


def _index_bytes(env: Env, name: str, edit: Callable[[bytes], bytes]) -> Path:
    """``tiny_faces``'s index (root made absolute) written as ``edit(its bytes)``."""
    index = _copy_index(env.fixture("tiny_faces"), env.tmp / "idx")
    target = index.with_name(f"{name}.csv")
    target.write_bytes(edit(index.read_bytes()))
    index.with_name("index.meta.json").rename(index.with_name(f"{name}.meta.json"))
    return target


def _rows(keep: Callable[[str], bool]) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        header, *rows = data.decode().splitlines()
        return "\n".join([header, *(r for r in rows if keep(r))]).encode() + b"\n"
    return edit


def _no_run(tmp: Path) -> None:
    assert not (tmp / "run").exists()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and holds none (costs no memory)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


# ---------------------------------------------------------------- 1: a file name that is not UTF-8


def _latin1_name(env: Env) -> list[str]:
    pics = env.tmp / "pics"
    pics.mkdir()
    shutil.copy(_image(env), pics / "ok.png")
    shutil.copy(_image(env), os.fsencode(pics) + b"/caf\xe9.png")
    return ["predict", str(env.fixture("tiny_run")), str(pics), "--out", str(env.tmp / "p.csv")]


def _latin1_name_check(tmp: Path) -> None:
    rows = (tmp / "p.csv").read_bytes().splitlines()
    assert len(rows) == 3 and rows[0].startswith(b"path,")
    assert rows[1].startswith(os.fsencode(tmp / "pics") + b"/caf\xe9.png,")  # the bytes on disk
    assert rows[2].startswith(os.fsencode(tmp / "pics" / "ok.png") + b",")


# ---------------------------------------------------------------- 2: index encodings


def _bom_index(env: Env) -> list[str]:
    index = _index_bytes(env, "bom", lambda data: b"\xef\xbb\xbf" + data)
    return ["evaluate", str(_run_copy(env)), "--index", str(index), "--split", "val", "--bootstrap", "0"]


def _bom_index_check(tmp: Path) -> None:
    assert json.loads((tmp / "run" / "eval" / "val" / "metrics.json").read_text())["n"] > 0


def _latin1_index(env: Env) -> list[str]:
    index = _index_bytes(env, "latin1", lambda data: data.replace(b",anger,", b",ang\xe9r,", 1))
    return _train_args(index, env.tmp / "run")


def _binary_index(env: Env) -> list[str]:
    index = _index_bytes(env, "binary", lambda data: bytes(range(256)) * 4)
    return _train_args(index, env.tmp / "run")


# ---------------------------------------------------------------- 3: full disks and the names errors give


def _full_disk_checkpoint(env: Env) -> list[str]:
    import keras

    def save_then_enospc(self: Any, filepath: Any, *args: Any, **kwargs: Any) -> None:
        Path(filepath).write_bytes(b"PK\x03\x04 cut off")
        _enospc()

    env.mp.setattr(keras.Model, "save", save_then_enospc)
    return _train_args(env.fixture("tiny_xrays"), env.tmp / "run", "--cache-dir", str(env.tmp / "cache"))


def _full_disk_checkpoint_check(tmp: Path) -> None:
    assert not [p for p in (tmp / "run").rglob("*") if "partial" in p.name]
    assert not (tmp / "run" / "model.keras").exists()


def _small_cache_room(env: Env) -> list[str]:
    env.mp.setattr("kerascv_emotion.data.cache.shutil.disk_usage",
                   lambda _: SimpleNamespace(total=10**6, used=10**6, free=500))
    return _train_args(env.fixture("tiny_xrays"), env.tmp / "run", "--cache-dir", str(env.tmp / "cache"))


def _class_folders(root: Path, image: Path) -> Path:
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            shutil.copy(image, root / name / f"img{i}.png")
    return root


def _read_only_out(env: Env) -> list[str]:
    root = _class_folders(env.tmp / "root", _image(env))
    env.mp.setattr(tempfile, "mkstemp", _erofs_mkstemp)
    return ["index", str(root), "--out", str(env.tmp / "out" / "idx.csv")]


def _rename_fails(env: Env) -> list[str]:
    root = _class_folders(env.tmp / "root", _image(env))

    def cross_device(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), src, dst)

    env.mp.setattr("kerascv_emotion.io.os.replace", cross_device)
    return ["index", str(root), "--out", str(env.tmp / "out" / "idx.csv")]


def _out_folder_clean(tmp: Path) -> None:
    assert not (tmp / "out").exists() or _hidden_temps(tmp / "out") == []
    assert not (tmp / "out" / "idx.csv").exists()


# ---------------------------------------------------------------- 4: workflow configs


def _config(env: Env, edit: Callable[[dict], None]) -> list[str]:
    config = tiny_default_config(results=str(env.tmp / "results"))
    edit(config)
    (env.tmp / "config.yaml").write_text(yaml.safe_dump(config))
    return ["-n", "--cores", "1", "--configfile", str(env.tmp / "config.yaml")]


def _unknown_key(env: Env) -> list[str]:
    return _config(env, lambda c: c["datasets"]["faces"].update(bogus=1))


def _no_datasets(env: Env) -> list[str]:
    return _config(env, lambda c: c.update(datasets={}))


# ---------------------------------------------------------------- 5: wrong words, late checks


def _empty_folder(env: Env) -> list[str]:
    (env.tmp / "empty").mkdir()
    return ["predict", str(env.fixture("tiny_run")), str(env.tmp / "empty"), "--out", str(env.tmp / "p.csv")]


def _no_csv(tmp: Path) -> None:
    assert not (tmp / "p.csv").exists()


def _index_without_rows(env: Env) -> list[str]:
    return _train_args(_index_bytes(env, "empty", _rows(lambda row: False)), env.tmp / "run")


def _index_without_train_rows(env: Env) -> list[str]:
    return _train_args(_index_bytes(env, "val_test", _rows(lambda row: ",train," not in row)), env.tmp / "run")


def _negative_bootstrap(env: Env) -> list[str]:
    return ["evaluate", str(_run_copy(env)), "--bootstrap", "-5"]


def _no_eval(tmp: Path) -> None:
    assert not (tmp / "run" / "eval").exists()


def _negative_threads(env: Env) -> list[str]:
    return ["predict", str(env.fixture("tiny_run")), str(_image(env)), "--out", str(env.tmp / "p.csv"),
            "--threads", "-3"]


# ---------------------------------------------------------------- 6: library noise


def _bomb(env: Env) -> list[str]:
    pics = env.tmp / "pics"
    pics.mkdir()
    (pics / "big.png").write_bytes(_png_header(10_000, 10_000))  # 100 megapixels: over the limit, under 2x
    shutil.copy(_image(env), pics / "ok.png")
    return ["predict", str(env.fixture("tiny_run")), str(pics), "--out", str(env.tmp / "p.csv")]


def _bomb_check(tmp: Path) -> None:
    assert len((tmp / "p.csv").read_text().splitlines()) == 2  # header and ok.png


def _regression_tune(env: Env) -> list[str]:
    return ["tune", str(env.fixture("tiny_run")), "--index", str(env.fixture("tiny_faces")), "--out",
            str(env.tmp / "run"), "--task", "regression", "--head-epochs", "1", "--finetune-epochs", "0",
            "--augment", "none", "--class-weight", "none", "--precise-bn-images", "0", "--batch-size", "8"]


def _regression_tune_check(tmp: Path) -> None:
    """The new head keeps the model's input structure (one tensor, not a list of one), so a
    call with one batch, as PerClassMetrics and users make it, raises no Keras warning."""
    from kerascv_emotion.runs import load_model

    assert json.loads((tmp / "run" / "config.json").read_text())["task"] == "regression"
    model = load_model(tmp / "run" / "model.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model(np.zeros((1, *model.input_shape[1:]), dtype=np.float32), training=False)
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []


# ---------------------------------------------------------------- 7: a quantised regression export


def _int8_regression_export(env: Env) -> list[str]:
    from kerascv_emotion import export

    real = export._RUNNERS["litert"]

    def broken(path: Path, threads: int | None = None) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
        run, runtime = real(path, threads)  # valence/arousal lie in -1..1: 10 is wrong for every image
        return (lambda x: np.full_like(run(x), 10.0)), runtime

    env.mp.setitem(export._RUNNERS, "litert", broken)
    return ["export", str(env.fixture("regression_run")), "--format", "litert", "--quantize", "int8",
            "--out", str(env.tmp / "exp")]


def _int8_regression_export_check(tmp: Path) -> None:
    report = json.loads((tmp / "exp" / "export.json").read_text())
    assert report["passed"] is False and report["rmse_increase"] > 0.02
    assert report["export_rmse"] == pytest.approx(report["keras_rmse"] + report["rmse_increase"])


# ---------------------------------------------------------------- 8: a second workflow into the same results


def _second_workflow(env: Env) -> list[str]:
    from kerascv_emotion.runs import claim

    args = _config(env, lambda c: c.update(datasets={"faces": {
        k: v for k, v in c["datasets"]["faces"].items() if k not in ("tune", "regression", "ensembles", "distill")}}))
    config = yaml.safe_load((env.tmp / "config.yaml").read_text())
    run = env.tmp / "results" / "faces" / config["datasets"]["faces"]["archs"][0]
    run.mkdir(parents=True)
    (run / "log.txt").write_text("the first workflow's epochs\n")
    env.stack.enter_context(claim(run, {"held by": "the first workflow"}))
    return [str(run / "model.keras"), *args[1:]]


def _second_workflow_check(tmp: Path) -> None:
    run = next((tmp / "results" / "faces").glob("*/log.txt")).parent
    kept = (run / "log.txt").read_text()
    assert kept.startswith("the first workflow's epochs\n") and "is in use by" in kept
    assert "is in use by" in (tmp / "results" / "faces" / "logs" / f"train-{run.name}.log").read_text()


FAULTS: dict[str, Fault] = {
    # 1
    "latin1_file_name": Fault(_latin1_name, 0, ["wrote", "2 row(s) from 2 image(s)"], check=_latin1_name_check),
    # 2
    "index_with_bom": Fault(_bom_index, 0, ["val: accuracy"], check=_bom_index_check),
    "latin1_index": Fault(_latin1_index, 1, ["latin1.csv", "not UTF-8", "CSV UTF-8"], check=_no_run),
    "binary_index": Fault(_binary_index, 1, ["binary.csv", "not UTF-8", "kerascv-emotion index"], check=_no_run),
    # 3
    "full_disk_checkpoint": Fault(_full_disk_checkpoint, 1, ["work/best-train.keras", "No space left on device"],
                                  ["partial"], _full_disk_checkpoint_check),
    "small_cache_units": Fault(_small_cache_room, 1, ["kB", "500 bytes free"], ["0.00 GB"], _no_run),
    "read_only_out_names_out": Fault(_read_only_out, 1, ["idx.csv: Read-only file system"], ["abc123"],
                                     _out_folder_clean),
    "rename_names_out": Fault(_rename_fails, 1, ["out/idx.csv: Invalid cross-device link"], [".tmp", "->"],
                              _out_folder_clean),
    # 4
    "config_unknown_key": Fault(_unknown_key, 1, ["Error: config datasets.faces:", "'bogus' was unexpected"],
                                snakemake=True),
    "config_no_datasets": Fault(_no_datasets, 1, ["Error: config datasets:", "non-empty"], snakemake=True),
    # 5
    "predict_empty_folder": Fault(_empty_folder, 1, ["empty: no files found", "folders"], check=_no_csv),
    "index_without_rows": Fault(_index_without_rows, 1, ["empty.csv has no rows", "kerascv-emotion index"],
                                ["val fraction"], _no_run),
    "index_without_train_rows": Fault(_index_without_train_rows, 1, ["no 'train' rows", "val, test"],
                                      ["val fraction"], _no_run),
    "negative_bootstrap": Fault(_negative_bootstrap, 2, ["--bootstrap", "-5"], check=_no_eval),
    "negative_threads": Fault(_negative_threads, 2, ["--threads", "-3"], check=_no_csv),
    # 6 (and every CLI row: no library warnings)
    "decompression_bomb": Fault(_bomb, 0, ["skipped", "big.png", "decompression bomb", "1 skipped"],
                                check=_bomb_check),
    "regression_tune": Fault(_regression_tune, 0, ["wrote"], check=_regression_tune_check),
    # 7
    "int8_regression_export": Fault(_int8_regression_export, 1, ["fails its check", "rmse_increase <= 0.02"],
                                    check=_int8_regression_export_check),
    # 8
    "second_workflow_keeps_first_log": Fault(_second_workflow, 1, [], snakemake=True, check=_second_workflow_check),
}


@pytest.fixture(scope="module")
def regression_run(tiny_run: Path, tiny_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_run`` tuned one epoch into a valence/arousal regressor."""
    from kerascv_emotion.finetune import tune
    from kerascv_emotion.settings import TuneSettings

    settings = TuneSettings.create(str(tiny_run), str(tiny_faces), task="regression", head_epochs=1,
                                   finetune_epochs=0, augment=None, class_weight=None, precise_bn_images=0,
                                   batch_size=8)
    return tune(settings, tmp_path_factory.mktemp("va") / "run", verbose=0)


def _invoke(fault: Fault, args: list[str], cwd: Path) -> Outcome:
    if fault.snakemake:
        result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args], cwd=cwd,
                                capture_output=True, text=True, timeout=600)
        return Outcome(result.returncode, result.stdout, result.stderr, [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    noise = [f"{w.filename}: {w.category.__name__}: {w.message}" for w in caught
             if "site-packages" in w.filename and not issubclass(w.category, DeprecationWarning)]
    return Outcome(result.exit_code, result.stdout, result.stderr, noise)


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    fault = FAULTS[name]
    with contextlib.ExitStack() as stack:
        args = fault.setup(Env(tmp_path, monkeypatch, stack, request.getfixturevalue))
        outcome = _invoke(fault, args, tmp_path)
    monkeypatch.undo()
    output = outcome.stdout + outcome.stderr
    assert outcome.exit_code == fault.exit_code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert outcome.library_warnings == []
    if fault.exit_code == 1 and fault.words:  # one line names the file or setting and what to do
        errors = [line for line in outcome.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, outcome.stderr[-3000:]
        if fault.snakemake:
            assert outcome.stderr.strip() == errors[0]  # nothing else: no schema dump
        shown = errors[0]
    else:
        shown = output
    for word in fault.words:
        assert word in shown, (word, shown)
    for word in fault.absent:
        assert word not in shown, (word, shown)
    if fault.check is not None:
        fault.check(tmp_path)


def test_an_oserror_with_only_a_message_keeps_it(tmp_path: Path) -> None:
    """Naming the target (or the run folder) applies to errors from the system (an errno);
    ``OSError("message")`` would print as ``[Errno None] None: 'PATH'`` with a name added."""
    from kerascv_emotion.io import atomic_open
    from kerascv_emotion.runs import claim

    with pytest.raises(OSError) as raised, atomic_open(tmp_path / "a.txt"):
        raise OSError("the backup is not complete; delete it")
    assert str(raised.value) == "the backup is not complete; delete it"
    with pytest.raises(OSError) as raised, claim(tmp_path / "run", {}):
        raise OSError("the backup is not complete; delete it")
    assert str(raised.value) == "the backup is not complete; delete it"
    with pytest.raises(OSError) as raised, claim(tmp_path / "run", {}):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert raised.value.filename == str(tmp_path / "run")
