"""Bad input, bad settings and failing filesystems (issue 15): each case states its input,
the expected exit status and the words the one-line message must contain, and checks that
nothing written earlier was changed or left half-written."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from kerascv_emotion.cli import main
from kerascv_emotion.errors import BadImageError, DataError

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- helpers


def _class_folders(root: Path, per_class: int = 5) -> Path:
    """``root/<cat|dog>/img<i>.png``: distinct 16x16 images."""
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (16, 16), (40 * i, 100 * c, 7)).save(root / name / f"img{i}.png")
    return root


def _copy_index(index: Path, dest: Path, extra_rows: list[str] | None = None) -> Path:
    """A copy of ``index`` (CSV and sidecar, root made absolute) with ``extra_rows`` appended."""
    dest.mkdir(parents=True, exist_ok=True)
    meta = json.loads(index.with_name(index.stem + ".meta.json").read_text())
    meta["root"] = str((index.parent / meta["root"]).resolve())
    (dest / "index.meta.json").write_text(json.dumps(meta))
    lines = index.read_text().splitlines()
    (dest / "index.csv").write_text("\n".join(lines + (extra_rows or [])) + "\n")
    return dest / "index.csv"


def _first_row(index: Path, split: str) -> list[str]:
    for line in index.read_text().splitlines()[1:]:
        cells = line.split(",")
        if cells[1] == split:
            return cells
    raise AssertionError(split)


def _hidden_temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.is_file())


def _enospc(*_: Any, **__: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _erofs_mkstemp(suffix: str | None = None, prefix: str | None = None, dir: str | None = None,
                   text: bool = False) -> tuple[int, str]:
    name = os.path.join(dir or ".", f"{prefix}abc123{suffix}")
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), name)


def _train_args(index: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--index", str(index), "--arch", "alexnet", "--image-size", "32", "--epochs", "1",
            "--batch-size", "4", "--precise-bn-images", "0", "--out", str(out), *extra]


# ---------------------------------------------------------------- CLI cases


@dataclass
class Case:
    """``setup(tmp_path, monkeypatch, data)`` returns the CLI arguments (and may install a
    fault); ``check(tmp_path)`` asserts what must (not) be on disk afterwards."""

    setup: Callable[[Path, pytest.MonkeyPatch, dict[str, Path]], list[str]]
    exit_code: int
    words: list[str]
    check: Callable[[Path], None] | None = None
    stdout_words: list[str] = field(default_factory=list)


def _index_readonly(tmp: Path, mp: pytest.MonkeyPatch, data: dict[str, Path]) -> list[str]:
    _class_folders(tmp / "root")
    mp.setattr(tempfile, "mkstemp", _erofs_mkstemp)
    return ["index", str(tmp / "root"), "--out", str(tmp / "out" / "idx.csv")]


def _index_full_disk(tmp: Path, mp: pytest.MonkeyPatch, data: dict[str, Path]) -> list[str]:
    _class_folders(tmp / "root")
    (tmp / "out").mkdir()
    (tmp / "out" / "idx.csv").write_text("earlier content\n")
    mp.setattr("kerascv_emotion.io.os.fsync", _enospc)
    return ["index", str(tmp / "root"), "--out", str(tmp / "out" / "idx.csv")]


def _index_full_disk_check(tmp: Path) -> None:
    assert (tmp / "out" / "idx.csv").read_text() == "earlier content\n"  # the earlier file is intact
    assert _hidden_temps(tmp / "out") == []


def _cache_full_disk(tmp: Path, mp: pytest.MonkeyPatch, data: dict[str, Path]) -> list[str]:
    def header_then_enospc(handle: Any, *args: Any, **kwargs: Any) -> None:
        handle.write(b"\x93NUMPY partial")
        _enospc()

    mp.setattr(np.lib.format, "write_array_header_1_0", header_then_enospc)
    return _train_args(data["xrays"], tmp / "run", "--cache-dir", str(tmp / "cache"))


def _cache_full_disk_check(tmp: Path) -> None:
    assert _hidden_temps(tmp / "cache") == []
    assert not (tmp / "run").exists()  # no empty run folder left behind


def _dangling_symlink(tmp: Path, mp: pytest.MonkeyPatch, data: dict[str, Path]) -> list[str]:
    root = _class_folders(tmp / "root")
    (root / "dog" / "gone.png").symlink_to(tmp / "nowhere.png")
    return ["index", str(root), "--out", str(tmp / "idx.csv")]


def _dangling_symlink_check(tmp: Path) -> None:
    meta = json.loads((tmp / "idx.meta.json").read_text())
    assert [s["path"] for s in meta["meta"]["skipped"]] == ["dog/gone.png"]
    assert "dangling symlink" in meta["meta"]["skipped"][0]["reason"]
    rows = (tmp / "idx.csv").read_text().splitlines()[1:]
    assert len(rows) == 10 and not any("gone.png" in r for r in rows)


def _max_pixels(tmp: Path, mp: pytest.MonkeyPatch, data: dict[str, Path]) -> list[str]:
    return _train_args(data["xrays"], tmp / "run", "--max-image-pixels", "1000", "--on-bad-image", "fail",
                       "--cache-dir", str(tmp / "cache"))


def _cache_too_big(tmp: Path, mp: pytest.MonkeyPatch, data: dict[str, Path]) -> list[str]:
    mp.setattr("kerascv_emotion.data.cache.shutil.disk_usage",
               lambda _: SimpleNamespace(total=10**6, used=10**6, free=100))
    return _train_args(data["xrays"], tmp / "run", "--cache-dir", str(tmp / "cache"))


def _no_run_folder(tmp: Path) -> None:
    assert not (tmp / "run").exists()


def _dup_across_splits(tmp: Path, mp: pytest.MonkeyPatch, data: dict[str, Path]) -> list[str]:
    row = _first_row(data["xrays"], "train")
    index = _copy_index(data["xrays"], tmp / "idx", [",".join([row[0], "test", *row[2:]])])
    return _train_args(index, tmp / "run")


def _report_split(tmp: Path, mp: pytest.MonkeyPatch, data: dict[str, Path]) -> list[str]:
    from test_reporting import make_run

    run = make_run(tmp, "run")
    return ["report", str(run), "--split", "foo"]


def _report_downgrade(tmp: Path, mp: pytest.MonkeyPatch, data: dict[str, Path]) -> list[str]:
    from test_reporting import make_run

    run = make_run(tmp, "run")
    result = CliRunner().invoke(main, ["report", str(run), "--split", "test"])
    assert result.exit_code == 0, result.output
    (tmp / "full.html").write_bytes((run / "report" / "report.html").read_bytes())
    return ["report", str(run), "--split", "val"]


def _report_downgrade_check(tmp: Path) -> None:
    assert (tmp / "run" / "report" / "report.html").read_bytes() == (tmp / "full.html").read_bytes()


def _compare_datasets(tmp: Path, mp: pytest.MonkeyPatch, data: dict[str, Path]) -> list[str]:
    from test_reporting import make_run

    first = make_run(tmp, "a", n=160)
    second = make_run(tmp, "b", seed=1, n=120)
    config = json.loads((second / "config.json").read_text())
    config["index"] = "data/other.csv"
    (second / "config.json").write_text(json.dumps(config))
    return ["compare", str(first), str(second), "--out", str(tmp / "cmp")]


def _compare_datasets_check(tmp: Path) -> None:
    text = (tmp / "cmp" / "comparison.md").read_text()
    assert "different data" in text and "data/other.csv" in text
    assert "different data" in (tmp / "cmp" / "comparison.html").read_text()


def _corrupt_model(tmp: Path, mp: pytest.MonkeyPatch, data: dict[str, Path]) -> list[str]:
    (tmp / "bad.keras").write_bytes(b"this is not a zip archive")
    return ["tune", str(tmp / "bad.keras"), "--index", str(data["xrays"]), "--out", str(tmp / "run")]


def _unknown_option_after_run_dir(tmp: Path, mp: pytest.MonkeyPatch, data: dict[str, Path]) -> list[str]:
    return _train_args(data["xrays"], tmp / "run", "--arch-option", "depth=3", "--cache-dir", str(tmp / "cache"))


CLI_CASES: dict[str, Case] = {
    # 1: filesystem errors are one line naming the path and the cause; nothing half-written
    "read_only_out": Case(_index_readonly, 1, ["Error:", "idx.csv", "Read-only file system"]),
    "full_disk_out": Case(_index_full_disk, 1, ["Error:", "idx.csv", "No space left on device"],
                          _index_full_disk_check),
    "full_disk_cache": Case(_cache_full_disk, 1, ["Error:", "cache", ".npy", "No space left on device"],
                            _cache_full_disk_check),
    # 3: a dangling symlink is skipped and listed, the folder still indexed
    "dangling_symlink": Case(_dangling_symlink, 0, [], _dangling_symlink_check,
                             stdout_words=["skipped 1", "wrote"]),
    # 4: the pixel limit has a CLI option, and it reaches the decoder
    "max_image_pixels": Case(_max_pixels, 1, ["Error:", "above the limit of 1000", "--max-image-pixels"],
                             _no_run_folder),
    # 5: an image size beyond the hard maximum, and a cache that cannot fit on the disk
    "image_size_too_large": Case(lambda t, m, d: _train_args(d["xrays"], t / "run", "--image-size", "100000"),
                                 2, ["--image-size", "100000", "1024"], _no_run_folder),
    "cache_cannot_fit": Case(_cache_too_big, 1, ["Error:", "cache", "needs", "free", "--image-size"],
                             _no_run_folder),
    # 6: a negative learning rate
    "negative_lr": Case(lambda t, m, d: _train_args(d["xrays"], t / "run", "--lr", "-1"), 2, ["--lr", "-1"],
                        _no_run_folder),
    # 7: the same image in two splits
    "duplicate_row_across_splits": Case(_dup_across_splits, 1, ["Error:", "twice", "train", "test"],
                                        _no_run_folder),
    # 8: report: only real splits, and never a poorer report over a full one
    "report_unknown_split": Case(_report_split, 2, ["foo", "train", "val", "test"]),
    "report_no_downgrade": Case(_report_downgrade, 1, ["Error:", "report.html", "'val'", "evaluate"],
                                _report_downgrade_check),
    # 9: compare runs on different data: a note in the outputs and on the terminal
    "compare_different_data": Case(_compare_datasets, 0, ["different data", "data/other.csv"],
                                   _compare_datasets_check),
    # 12: a corrupt .keras file
    "corrupt_keras_file": Case(_corrupt_model, 1, ["Error:", "bad.keras", "corrupt or not a Keras file"],
                               _no_run_folder),
    # 13: a settings error found after the run folder was made leaves no empty folder
    "unknown_arch_option": Case(_unknown_option_after_run_dir, 1, ["Error:", "no option(s) depth"],
                                _no_run_folder),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_bad_input(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_xrays: Path) -> None:
    case = CLI_CASES[name]
    args = case.setup(tmp_path, monkeypatch, {"xrays": tiny_xrays})
    result = CliRunner().invoke(main, args)
    monkeypatch.undo()
    assert result.exit_code == case.exit_code, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if case.exit_code == 1:  # one line, no traceback
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.stderr
        assert "Traceback" not in result.output
        for word in case.words:
            assert word in errors[0], (word, errors[0])
    else:
        for word in case.words:
            assert word in result.output, (word, result.output)
    for word in case.stdout_words:
        assert word in result.stdout, (word, result.stdout)
    if case.check is not None:
        case.check(tmp_path)


def test_unexpected_exception_keeps_its_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("kerascv_emotion.data.readers.build_index", bug)
    result = CliRunner().invoke(main, ["index", str(_class_folders(tmp_path / "root")), "--out",
                                       str(tmp_path / "idx.csv")])
    assert isinstance(result.exception, RuntimeError)


def test_tensorflow_start_up_chatter_is_silent_unless_verbose() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO)
    quiet = subprocess.run([sys.executable, "-m", "kerascv_emotion", "models"], capture_output=True, text=True,
                           env=env, timeout=300)
    assert quiet.returncode == 0 and "vgg" in quiet.stdout
    noise = [line for line in quiet.stderr.splitlines()
             if any(word in line for word in ("oneDNN", "cuda", "absl", "cpu_feature_guard"))]
    assert noise == [], quiet.stderr
    verbose = subprocess.run([sys.executable, "-m", "kerascv_emotion", "--verbose", "models"],
                             capture_output=True, text=True, env=env, timeout=300)
    assert verbose.returncode == 0 and "vgg" in verbose.stdout
    assert "oneDNN" in verbose.stderr or "cuda" in verbose.stderr  # TensorFlow's own lines, on request


# ---------------------------------------------------------------- library cases


def _load_within(func: Callable[[], Any], fifo: Path, seconds: float = 120.0) -> Any:
    """Run ``func`` in a thread; if it is still blocked after ``seconds`` (a reader stuck
    opening ``fifo``), unblock it by opening the FIFO's write end, then fail. The bound only
    ends a hang: a passing run needs well under a second of CPU, even on a loaded machine."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func()
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(10)
        pytest.fail(f"decoding {fifo} hung")
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.mark.parametrize("policy", ["skip", "fail"])
def test_fifo_named_like_an_image_does_not_hang(tmp_path: Path, tiny_xrays: Path, policy: str) -> None:
    from kerascv_emotion.data.cache import load_split
    from kerascv_emotion.data.images import load_image
    from kerascv_emotion.data.index import read_index

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(BadImageError, match="not a regular file"):
        _load_within(lambda: load_image(fifo, 32), fifo)
    # an index row pointing at the FIFO follows the bad-image policy
    index = read_index(tiny_xrays)
    src = index.resolve(index.records[0])
    fifo_in_root = src.with_name(f"pipe-{policy}.png")
    os.mkfifo(fifo_in_root)
    try:
        from dataclasses import replace

        bad = index.with_records([replace(index.records[0], path=Path(index.records[0].path)
                                          .with_name(fifo_in_root.name).as_posix()), *index.records[1:]])
        run = lambda: load_split(bad, index.records[0].split, 32, cache_dir=tmp_path / "cache",  # noqa: E731
                                 on_bad_image=policy, progress=False)
        if policy == "fail":
            with pytest.raises(BadImageError, match="not a regular file"):
                _load_within(run, fifo_in_root)
        else:
            split = _load_within(run, fifo_in_root)
            assert [s["path"] for s in split.skipped] == [bad.records[0].path]
    finally:
        fifo_in_root.unlink()


def test_large_16_bit_image_decodes_without_gigabytes(tmp_path: Path) -> None:
    from kerascv_emotion.data.images import load_image

    path = tmp_path / "big16.png"
    pixels = np.tile(np.arange(4000, dtype=np.uint16) * 16, (4000, 1))
    Image.fromarray(pixels).save(path)
    del pixels
    small, values = tmp_path / "small16.png", np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16
    Image.fromarray(values).save(small)
    # the documented conversion (0..65535 -> 0..255, rounded), then the resize: unchanged output
    expected = Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8))
    expected = np.asarray(expected.resize((32, 32), Image.Resampling.BILINEAR))[:, :, None]
    tracemalloc.start()
    try:
        out = load_image(path, 64, channels=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (64, 64, 1)
    assert out[0, 0, 0] < 10 and out[0, -1, 0] > 240  # 0..65535 scaled to 0..255
    # the 16-Mpixel image as float64 would be 128 MB per copy; the decoder keeps to a fraction
    assert peak < 48 * 2**20, f"peak {peak / 2**20:.0f} MiB of numpy allocations"
    assert np.array_equal(load_image(small, 32, channels=1), expected)


def test_max_pixels_above_pillows_own_bomb_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Raising the limit works even above Pillow's hard stop (twice its ``MAX_IMAGE_PIXELS``)."""
    from kerascv_emotion.data.images import load_image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = tmp_path / "img.png"
    Image.new("RGB", (64, 64), (9, 9, 9)).save(path)  # 4096 pixels, over 2 x 1000
    with pytest.raises(BadImageError, match="--max-image-pixels"):
        load_image(path, 32)
    assert load_image(path, 32, max_pixels=5000).shape == (32, 32, 3)


def test_schema_bounds_image_size() -> None:
    import jsonschema

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    from kerascv_emotion.data.images import MAX_IMAGE_SIDE

    def config(size: int) -> dict[str, Any]:
        return {"datasets": {"d": {"synthetic": {"kind": "faces"}, "archs": ["vgg"], "image_size": size}}}

    jsonschema.validate(config(MAX_IMAGE_SIDE), schema)
    with pytest.raises(jsonschema.ValidationError, match="maximum"):
        jsonschema.validate(config(MAX_IMAGE_SIDE + 1), schema)


def test_duplicate_row_in_one_split_warns(tmp_path: Path, tiny_xrays: Path, caplog: pytest.LogCaptureFixture) -> None:
    from kerascv_emotion.data.index import read_index

    row = _first_row(tiny_xrays, "train")
    index = read_index(_copy_index(tiny_xrays, tmp_path, [",".join(row)]))
    assert len(index) == len(read_index(tiny_xrays)) + 1  # kept (the user may want it), but said
    assert any("twice" in r.getMessage() and row[0] in r.getMessage() for r in caplog.records)


def test_atomic_writes_respect_the_umask(tmp_path: Path) -> None:
    from kerascv_emotion.io import atomic_path, write_json

    old = os.umask(0o027)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"b")
    finally:
        os.umask(old)
    for name in ("a.json", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640, name


def test_corrupt_keras_file_is_named(tmp_path: Path) -> None:
    from kerascv_emotion.runs import load_model

    path = tmp_path / "model.keras"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match=r"model\.keras.*corrupt or not a Keras file"):
        load_model(path)


def test_stale_cache_temp_files_are_cleaned(tmp_path: Path, tiny_xrays: Path) -> None:
    from kerascv_emotion.data.cache import STALE_TEMP_SECONDS, load_split

    cache = tmp_path / "cache"
    cache.mkdir()
    stale, fresh = cache / ".train-32x32x3-0123.abcd.npy", cache / ".train-32x32x3-4567.efgh.npy"
    for path in (stale, fresh):
        path.write_bytes(b"cut off")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    load_split(tiny_xrays, "train", 32, cache_dir=cache, progress=False)
    assert not stale.exists() and fresh.exists()  # a fresh one may belong to a build in progress


@pytest.mark.parametrize(("edit", "words"), [
    ({"archs": ["vgg", "keras:NotAModel"]}, ["keras:NotAModel", "available"]),
    ({"arch_options": {"vgg": {"depth": 3}}}, ["arch_options", "depth", "dropout"]),
])
def test_dry_run_checks_archs_and_their_options(tmp_path: Path, edit: dict[str, Any], words: list[str]) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    name = next(iter(config["datasets"]))
    config["datasets"][name].update(edit)
    config["datasets"][name].pop("tune", None)
    config["datasets"][name].pop("regression", None)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--cores", "1",
                             "--configfile", str(bad)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for word in words:
        assert word in output, (word, output[-2000:])


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    """Issue 15, case 1: a full disk in the middle of saving the best model left a cut-off
    ``work/best-*.keras``; the checkpoint is now written aside and renamed into place."""
    import errno
    import zipfile

    import keras
    import numpy as np

    from kerascv_emotion.callbacks import AtomicModelCheckpoint

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    target = tmp_path / "best-train.keras"
    checkpoint = AtomicModelCheckpoint(target, monitor="loss", mode="min", save_best_only=True)
    x, y = np.ones((4, 4), dtype="float32"), np.eye(2)[[0, 1, 0, 1]]
    model.fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint])
    first = target.read_bytes()
    assert zipfile.is_zipfile(target)

    real_save = keras.Model.save

    def full_disk(self: keras.Model, filepath: str, *args: object, **kwargs: object) -> None:
        Path(filepath).write_bytes(b"PK\x03\x04 cut off")
        raise OSError(errno.ENOSPC, "No space left on device", str(filepath))

    keras.Model.save = full_disk
    try:
        checkpoint.best = np.inf  # the next epoch is "better" and is saved
        with pytest.raises(OSError, match="No space left"):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint])
    finally:
        keras.Model.save = real_save
    assert target.read_bytes() == first  # the earlier checkpoint is intact
