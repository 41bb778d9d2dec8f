"""The run folder: the one owner of its layout (no TensorFlow import).

``RUN/`` holds ``config.json`` (every setting, with absolute paths, the best epoch and its
monitored value, library versions), ``class_names.json``, ``skipped_images.json``,
``model.keras`` (the best epoch's model), ``history.csv`` (one row per epoch, a ``phase``
column) and ``metrics_log.jsonl``; ``evaluate`` adds ``eval/<split>/`` and ``report`` adds
``report/``. While a train or tune runs, ``RUN/.lock`` holds an exclusive lock (``flock``)
naming its holder, and ``RUN/work/`` its resume state: ``settings.json`` (what it was started
with), per-phase checkpoints, logs and Keras backups.

A rerun resumes from ``work/`` only with the same settings (:data:`RESUME_IGNORES` aside);
with others it is refused, unless ``restart`` discards ``work/`` first. A finished run
replaces ``model.keras`` and removes ``eval/`` and ``report/``, which described the old model.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import fcntl
import json
import os
import shutil
import socket
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kerascv_emotion.errors import DataError, RunFolderError, TrainingDiverged
from kerascv_emotion.io import atomic_open, atomic_path, read_json, to_jsonable, write_json
from kerascv_emotion.tasks import monitor_mode

CONFIG, MODEL, WORK, LOCK = "config.json", "model.keras", "work", ".lock"
CALIBRATION = "calibration.json"  # the temperature fitted after train/tune (kerascv_emotion.temperature)
STATE = "settings.json"  # in work/
MEMBERS_KEY = "members"
"""``config.json`` key of an ensemble (:mod:`kerascv_emotion.ensemble`): its members, ``[{"run", "arch",
"image_size", "channels", "weight"}]``; such a run has no ``history.csv``."""
RESUME_IGNORES = ("workers", "cache_dir", "tensorboard")
"""Settings that do not change what is trained, so a resumed run may differ in them."""


def eval_dir(run_dir: str | os.PathLike, split: str, data: str | os.PathLike | None = None) -> Path:
    """``RUN/eval/<split>/``: ``metrics.json`` and ``predictions.npz`` of one split, or
    ``RUN/eval/data-<folder name>/`` for a labelled ``data`` folder (``evaluate --data``)."""
    return Path(run_dir) / "eval" / (f"data-{Path(data).resolve().name}" if data is not None else split)


def report_dir(run_dir: str | os.PathLike) -> Path:
    """``RUN/report/``: the run's figures and ``report.html``."""
    return Path(run_dir) / "report"


def is_finished_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder with ``config.json`` and ``model.keras`` (a finished run, or
    a preset)."""
    return looks_like_run(path) and (Path(path) / MODEL).is_file()


def looks_like_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder with ``config.json``: a run, finished or not (a path given
    where a run or an input may stand is taken as the run; :func:`read_config` then says
    whether it is finished)."""
    return (Path(path) / CONFIG).is_file()


def check_index_classes(index_path: str | os.PathLike, index_class_names: Sequence[str], run_dir: str | os.PathLike,
                        config: dict[str, Any], role: str = "run") -> None:
    """A one-line :class:`DataError` when the classes of the index at ``index_path`` differ
    (in names or order) from those the classification run ``run_dir`` predicts; a regression
    run is not checked. ``role`` names the run in the line (e.g. ``"teacher"``)."""
    if config.get("task", "classification") != "classification":
        return
    if list(index_class_names) != list(config["class_names"]):
        raise DataError(f"index {index_path} has classes {list(index_class_names)}, but {role} {run_dir} predicts "
                        f"{list(config['class_names'])}; give an index of the same classes")


def read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``RUN/config.json`` of a finished run; a one-line :class:`DataError` when the run is not
    finished, or the file is not JSON or lacks the input size, channels or output names that
    every use of a run reads."""
    run_dir = Path(run_dir)
    if not is_finished_run(run_dir):
        raise DataError(f"{run_dir} is not a finished run (no config.json/model.keras); run `kerascv-emotion train` first")
    path = run_dir / CONFIG
    try:
        config = read_json(path)
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
        raise DataError(f"{path} is unreadable ({type(exc).__name__}: {str(exc)[:120]}); restore it, or train "
                        "the run again") from None
    problem = _config_problem(config)
    if problem:
        raise DataError(f"{path} {problem}; restore it, or train the run again")
    return config


def _config_problem(config: Any) -> str | None:
    """What makes ``config`` unusable as a run's ``config.json``, or ``None``."""
    if not isinstance(config, dict):
        return f"holds a JSON {type(config).__name__}, not an object"
    for key in ("image_size", "channels"):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"has {key}={value!r}, not a positive integer"
    names = config.get("output_names")
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        return f"has output_names={names!r}, not a list of names"
    return None


def keras_file_readable(path: Path) -> bool:
    """Whether ``path`` is a complete ``.keras`` zip archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def load_model(path: str | os.PathLike, compile: bool = True) -> Any:
    """Load a ``.keras`` file saved by this library (Keras imported here, the custom objects
    registered); ``compile=False`` leaves out the loss and the optimizer state. A missing,
    corrupt or unloadable file is a one-line :class:`DataError` naming it."""
    import keras

    import kerascv_emotion.models  # noqa: F401  (registers custom objects)

    path = Path(path)
    if not path.is_file():
        raise DataError(f"model file {path} does not exist")
    if not keras_file_readable(path):
        raise DataError(f"model file {path} is corrupt or not a Keras file (not a readable .keras zip archive)")
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as exc:  # noqa: BLE001 - a corrupt file can fail in many ways
        raise DataError(f"cannot load model {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None


def load_run(run_dir: str | os.PathLike, compile: bool = True) -> tuple[dict[str, Any], Any]:
    """``config.json`` (:func:`read_config`) and ``model.keras`` (:func:`load_model`) of a
    finished run or a preset; a one-line :class:`DataError` when the model does not take the
    config's ``(image_size, image_size, channels)`` images or does not give one output per
    ``output_names`` entry (the two files come from different runs)."""
    config = read_config(run_dir)
    model = load_model(Path(run_dir) / MODEL, compile)
    expected = ((config["image_size"], config["image_size"], config["channels"]), len(config["output_names"]))
    found = (tuple(model.input_shape[1:]), model.output_shape[-1])
    if found != expected:
        raise DataError(f"{Path(run_dir) / MODEL} takes {found[0]} images and gives {found[1]} outputs, but "
                        f"{Path(run_dir) / CONFIG} says {expected[0]} and {expected[1]} "
                        f"({', '.join(config['output_names'])}): the two files are from different runs; "
                        "restore them, or train the run again")
    return config, model


def load_run_split(config: dict[str, Any], split: str, progress: bool = True) -> Any:
    """The ``split`` of the index a run was trained on (``config``: its ``config.json``), decoded
    as it trained: its image size, channels, cache folder, bad-image policy and pixel limit
    (:func:`~kerascv_emotion.data.cache.load_split`, with its progress lines unless ``progress``
    is off; a ``CachedSplit``)."""
    from kerascv_emotion.data.cache import cache_dir_for, load_split
    from kerascv_emotion.data.index import read_index

    index_path = Path(config["index"])
    return load_split(read_index(index_path), split, int(config["image_size"]), int(config["channels"]),
                      cache_dir=cache_dir_for(config.get("cache_dir"), index_path),
                      on_bad_image=config.get("on_bad_image", "skip"), max_pixels=config.get("max_pixels"),
                      progress=progress)


def _lock(run_dir: Path) -> int:
    """An exclusive ``flock`` on ``RUN/.lock`` (its file records the holder), or a one-line
    :class:`RunFolderError` naming the process that holds it."""
    path = run_dir / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            try:
                holder = json.loads(path.read_text(encoding="utf-8"))
                who = f"pid {holder['pid']} on {holder['host']} since {holder['started']}"
            except (OSError, ValueError, KeyError):
                who = "another process"
            raise RunFolderError(f"{run_dir} is in use by {who}; wait for it to finish or use another --out") from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:  # not unlinked by a finishing holder meanwhile
                break
        os.close(fd)
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}).encode())
    return fd


def _comparable(settings: dict[str, Any]) -> dict[str, Any]:
    plain = json.loads(json.dumps(to_jsonable(settings)))
    return {k: v for k, v in plain.items() if k not in RESUME_IGNORES}


def _check_resumable(run_dir: Path, work: Path, settings: dict[str, Any]) -> None:
    """Refuse (one line) to resume ``work/`` started with other settings; drop a ``work/``
    without its settings record (nothing can be checked; it cannot be trusted)."""
    state = work / STATE
    if not state.is_file():
        shutil.rmtree(work, ignore_errors=True)
        return
    try:
        old = _comparable(read_json(state))
    except (OSError, ValueError):
        old = {}
    new = _comparable(settings)
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if changed:
        raise RunFolderError(
            f"{run_dir} holds an interrupted run with other settings (changed: {', '.join(changed)}); "
            f"rerun with the same settings to resume, or pass --restart (or delete {work}) to start over")


@contextlib.contextmanager
def claim(run_dir: str | os.PathLike, settings: dict[str, Any], restart: bool = False) -> Iterator[Path]:
    """Lock ``run_dir`` for one train/tune and yield its ``work/`` folder, resumable when
    it was left by an interrupted run with the same ``settings`` (``restart``: discard it).

    If the block fails before any resumable state was written, or with
    :class:`~kerascv_emotion.errors.TrainingDiverged` (a resumed run would diverge again),
    ``work/`` and the folders this call made are removed again (a settings or data error or a
    NaN loss leaves no empty run and no half state; an earlier ``model.keras`` stays). An
    OSError that names no file (a log's write on a full disk) is given ``run_dir``'s name."""
    run_dir = Path(run_dir)
    made = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
    run_dir.mkdir(parents=True, exist_ok=True)
    work = run_dir / WORK
    fd = _lock(run_dir)
    try:
        if restart:
            shutil.rmtree(work, ignore_errors=True)
        elif work.exists():
            _check_resumable(run_dir, work, settings)
        work.mkdir(exist_ok=True)
        write_json(work / STATE, settings)
        yield work
    except BaseException as exc:
        if isinstance(exc, TrainingDiverged) or work.is_dir() and [p.name for p in work.iterdir()] == [STATE]:
            shutil.rmtree(work, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
            exc.filename = str(run_dir)
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            (run_dir / LOCK).unlink()
        os.close(fd)
        for folder in made:  # innermost first; kept when not empty
            with contextlib.suppress(OSError):
                folder.rmdir()


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def phase_history(work: Path, phase: str) -> list[dict[str, str]]:
    """The rows a phase's CSVLogger has written so far (``work/history-<phase>.csv``)."""
    return _read_csv_rows(work / f"history-{phase}.csv")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            with contextlib.suppress(json.JSONDecodeError):  # a line cut by a kill mid-write
                if line.strip():
                    out.append(json.loads(line))
    return out


def _merge_logs(run_dir: Path, work: Path, phases: Sequence[str]) -> list[dict[str, str]]:
    """Merge each phase's CSV and JSONL logs (deduplicated by epoch, last wins) into the run;
    returns the history rows by epoch."""
    rows: dict[int, dict[str, str]] = {}
    records: dict[int, dict[str, Any]] = {}
    for phase in phases:
        for row in phase_history(work, phase):
            rows[int(row["epoch"])] = {"epoch": row["epoch"], "phase": phase, **{k: v for k, v in row.items() if k != "epoch"}}
        for rec in _read_jsonl(work / phase / "metrics_log.jsonl"):
            rec["phase"] = phase
            records[int(rec["epoch"])] = rec
    keys: list[str] = []
    for row in rows.values():
        keys += [k for k in row if k not in keys]
    with atomic_open(run_dir / "history.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys, restval="NA")
        writer.writeheader()
        for epoch in sorted(rows):
            writer.writerow(rows[epoch])
    with atomic_open(run_dir / "metrics_log.jsonl", "w", encoding="utf-8") as handle:
        for epoch in sorted(records):
            handle.write(json.dumps(records[epoch], allow_nan=False, default=str) + "\n")
    return [rows[epoch] for epoch in sorted(rows)]


def best_of(rows: Sequence[dict[str, str]], monitor: str) -> tuple[int, float] | None:
    """``(epoch, value)`` of the first epoch with the best finite ``monitor`` value (the one
    ModelCheckpoint kept), or ``None`` when it was never finite."""
    best: tuple[int, float] | None = None
    sign = -1.0 if monitor_mode(monitor) == "min" else 1.0
    for row in rows:
        try:
            value = float(row.get(monitor, "nan"))
        except ValueError:
            continue
        if np.isfinite(value) and (best is None or sign * value > sign * best[1]):
            best = (int(row["epoch"]), value)
    return best


def finish(run_dir: Path, work: Path, checkpoint: Path, phases: Sequence[str], config: dict[str, Any],
           output_names: Sequence[str], skipped: list[dict[str, str]]) -> None:
    """Write the run's final artefacts from ``work/``: merged logs, ``config.json`` (``config``
    plus ``best_epoch``/``best_value`` of ``config["monitor"]``), the checkpoint as
    ``model.keras``; then remove the old model's ``eval/``, ``report/`` and ``calibration.json``,
    and ``work/``."""
    logged = [row for phase in phases for row in phase_history(work, phase)]
    if best_of(logged, config["monitor"]) is None:  # never promote a model whose monitor was not finite
        raise DataError(f"{run_dir}: no epoch had a finite {config['monitor']}; no model.keras was written "
                        f"(the epochs are logged in {work})")
    rows = _merge_logs(run_dir, work, phases)
    best = best_of(rows, config["monitor"])
    _write_run(run_dir, work, {**config, "best_epoch": best[0] if best else None,
                               "best_value": best[1] if best else None},
               output_names, skipped, lambda tmp: shutil.copyfile(checkpoint, tmp))


def finish_untrained(run_dir: Path, work: Path, config: dict[str, Any], output_names: Sequence[str],
                     save: Callable[[Path], Any]) -> None:
    """Write the artefacts of a run made without training (an ensemble): ``config.json``,
    ``class_names.json``, an empty ``skipped_images.json`` and ``model.keras`` (by ``save(path)``);
    removes what an earlier run left there (logs, ``eval/``, ``report/``) and ``work/``."""
    for name in ("history.csv", "metrics_log.jsonl"):
        (run_dir / name).unlink(missing_ok=True)
    _write_run(run_dir, work, config, output_names, [], save)


def _write_run(run_dir: Path, work: Path, config: dict[str, Any], output_names: Sequence[str],
               skipped: list[dict[str, str]], save: Callable[[Path], Any]) -> None:
    write_json(run_dir / "class_names.json", list(output_names))
    write_json(run_dir / "skipped_images.json", {"count": len(skipped), "files": skipped})
    write_json(run_dir / CONFIG, config)
    shutil.rmtree(run_dir / "eval", ignore_errors=True)
    shutil.rmtree(report_dir(run_dir), ignore_errors=True)
    (run_dir / CALIBRATION).unlink(missing_ok=True)
    with atomic_path(run_dir / MODEL) as tmp:
        save(tmp)
    shutil.rmtree(work, ignore_errors=True)


def temperature_mismatch(fitted_for: str | None, tta: str, run_dir: str | os.PathLike) -> str | None:
    """One line for outputs averaged by ``tta`` that were scaled by a temperature (``RUN/`` +
    :data:`CALIBRATION`) fitted for ``fitted_for``'s outputs (the second value of
    :func:`kerascv_emotion.temperature.tta_temperature`): how to fit their own; ``None`` when the
    two agree or no temperature was applied."""
    if fitted_for in (None, tta):
        return None
    return (f"the temperature was fitted without TTA, not for tta={tta}, whose averaged outputs are softer: "
            f"`kerascv-emotion calibrate {run_dir}` fits one")
