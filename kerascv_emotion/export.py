"""Export a finished run for deployment (Keras 3's ``model.export``, TensorFlow backend) and
check the written file in its own runtime against the Keras model.

``RUN/export/<format>[-<quantize>]/`` holds ``model.tflite`` (LiteRT), ``model.onnx`` (ONNX)
or ``model/`` (a TensorFlow SavedModel) and ``export.json``: the file's size and, on the
run's validation images, the largest and mean absolute output difference from the Keras
model and both accuracies. The input is float32 ``(N, H, W, C)`` scaled to 0..1, as
:func:`kerascv_emotion.predict.predict` feeds the Keras model; the batch size is free.

Quantisation (LiteRT only): ``float16`` stores float16 weights; ``int8`` quantises weights
and activations, calibrated on up to :data:`CALIBRATION_IMAGES` training images of the run's
own index (inputs and outputs stay float32). Checks: float32 formats agree within
:data:`FLOAT_TOLERANCE`; quantised ones keep the validation accuracy within
:data:`ACCURACY_TOLERANCE` (classification runs) or the validation RMSE of valence/arousal
within :data:`RMSE_TOLERANCE` of the Keras model's (regression runs).

``export.json`` also holds ``latency``: the single-image latency (``(1, H, W, C)``, the first
validation image) in milliseconds, median over :data:`LATENCY_RUNS` timed runs after
:data:`LATENCY_WARMUP` warm-up runs, on 1 CPU thread where the runtime sets threads (LiteRT,
ONNX Runtime; a SavedModel runs with TensorFlow's process setting, ``threads`` records it).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.inference import predict_batches, to_input
from kerascv_emotion.io import atomic_path, write_json
from kerascv_emotion.runs import check_index_classes, load_run_split
from kerascv_emotion.temperature import load_run_model

FORMATS = {"litert": "model.tflite", "onnx": "model.onnx", "saved_model": "model"}
FORMAT_MODULES = {"onnx": ("tf2onnx", "onnx", "onnxruntime")}
"""Modules beyond TensorFlow that a format's export and check need (the ``export`` extra's; LiteRT
falls back to TensorFlow's own converter and interpreter)."""
QUANTIZE = ("float16", "int8")
FLOAT_TOLERANCE = 1e-4
"""Largest absolute output difference allowed for a float32 export."""
ACCURACY_TOLERANCE = 0.01
"""Largest validation accuracy drop (1 point) allowed for a quantised export."""
RMSE_TOLERANCE = 0.02
"""Largest validation RMSE increase allowed for a quantised regression export (outputs in -1..1)."""
CALIBRATION_IMAGES = 200
BATCH = 64
LATENCY_RUNS = 50
LATENCY_WARMUP = 10

Runner = Callable[[np.ndarray], np.ndarray]
"""Float32 ``(N, H, W, C)`` inputs -> the model's outputs, in the exported file's runtime."""


def export_dir(run_dir: str | os.PathLike, fmt: str, quantize: str | None = None) -> Path:
    """``RUN/export/<format>[-<quantize>]``."""
    return Path(run_dir) / "export" / (fmt if quantize is None else f"{fmt}-{quantize}")


def _check(fmt: str, quantize: str | None) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r}: use one of {list(FORMATS)}")
    if quantize is not None and quantize not in QUANTIZE:
        raise ConfigError(f"quantize={quantize!r}: use one of {list(QUANTIZE)} (or none)")
    if quantize is not None and fmt != "litert":
        raise ConfigError(f"--quantize {quantize} is implemented for litert only, not {fmt}")
    missing = [name for name in FORMAT_MODULES.get(fmt, ()) if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"the {fmt} export needs {', '.join(missing)}, which is not installed: "
                          "pip install 'kerascv_emotion[export]'")


def _images(config: dict[str, Any], split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``(N, H, W, C)`` images of one split of the run's index, decoded as the run trained
    (:func:`~kerascv_emotion.runs.load_run_split`), and their targets: int label ids ``(N,)``, or
    valence/arousal ``(N, 2)`` for a regression run."""
    cached = load_run_split(config, split, progress=False)
    if config.get("task", "classification") == "regression":
        return cached.images, np.asarray(cached.valence_arousal, dtype=np.float64)
    return cached.images, np.asarray(cached.label_ids)


def _rmse(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Root mean squared error over every output of every image (valence and arousal together)."""
    return float(np.sqrt(np.mean((outputs - targets) ** 2)))


def _litert_options(quantize: str | None, config: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Converter settings for ``model.export(format="litert", **options)`` and the number of
    calibration images (0 unless int8)."""
    import tensorflow as tf

    if quantize is None:
        return {}, 0
    options: dict[str, Any] = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantize == "float16":
        options["target_spec"] = {"supported_types": [tf.float16]}
        return options, 0
    images, _ = _images(config, "train")
    pick = np.random.default_rng(0).permutation(len(images))[:CALIBRATION_IMAGES]

    def representative() -> Iterator[list[np.ndarray]]:
        for i in np.sort(pick):
            yield [to_input(images[i:i + 1])]

    options["representative_dataset"] = representative
    return options, len(pick)


def _litert_runner(path: Path, threads: int | None = None) -> tuple[Runner, str]:
    try:
        from ai_edge_litert.interpreter import Interpreter

        runtime = f"ai-edge-litert {metadata.version('ai-edge-litert')}"
    except ImportError:  # the TensorFlow wheel's own copy (deprecated)
        import tensorflow as tf

        Interpreter, runtime = tf.lite.Interpreter, f"tf.lite {tf.__version__}"
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    shape: list[int] = []

    def run(x: np.ndarray) -> np.ndarray:
        if list(x.shape) != shape:  # re-allocating on every call would be timed as latency
            interpreter.resize_tensor_input(inp, list(x.shape))
            interpreter.allocate_tensors()
            shape[:] = x.shape
        interpreter.set_tensor(inp, x)
        interpreter.invoke()
        return np.array(interpreter.get_tensor(out))

    return run, runtime


def _onnx_runner(path: Path, threads: int | None = None) -> tuple[Runner, str]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = options.inter_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return (lambda x: np.asarray(session.run(None, {name: x})[0])), f"onnxruntime {onnxruntime.__version__}"


def _saved_model_runner(path: Path, threads: int | None = None) -> tuple[Runner, str]:
    """``threads`` is ignored: TensorFlow's thread pools are set once per process."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return (lambda x: loaded.serve(x).numpy()), f"tensorflow {tf.__version__}"


_RUNNERS = {"litert": _litert_runner, "onnx": _onnx_runner, "saved_model": _saved_model_runner}


def file_runner(path: str | os.PathLike, fmt: str, threads: int | None = None) -> tuple[Runner, str]:
    """Load an exported file (``fmt``: a key of :data:`FORMATS`) in its runtime with ``threads``
    CPU threads (``None``: the runtime's default); returns the runner and the runtime's name."""
    _check(fmt, None)
    return _RUNNERS[fmt](Path(path), threads)


def single_image_latency(run: Runner, image: np.ndarray, runs: int = LATENCY_RUNS,
                         warmup: int = LATENCY_WARMUP) -> dict[str, Any]:
    """Wall time of ``run`` on one image (``(H, W, C)``, in the runner's input dtype) in
    milliseconds: median and 90th percentile over ``runs`` timed calls after ``warmup`` calls."""
    x = np.ascontiguousarray(image[None])
    for _ in range(warmup):
        run(x)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        run(x)
        times[i] = time.perf_counter() - start
    return {"ms_median": 1e3 * float(np.median(times)), "ms_p90": 1e3 * float(np.percentile(times, 90)),
            "runs": runs, "warmup": warmup}


def _latency(target: Path, fmt: str, image: np.ndarray) -> dict[str, Any]:
    """:func:`single_image_latency` of the written file on 1 CPU thread (see the module docstring)."""
    run, _ = file_runner(target, fmt, threads=1)
    if fmt == "saved_model":
        import tensorflow as tf

        threads: int | str = tf.config.threading.get_intra_op_parallelism_threads() or "tensorflow default"
    else:
        threads = 1
    return single_image_latency(run, image) | {"threads": threads}


def _write(model: Any, target: Path, fmt: str, options: dict[str, Any]) -> None:
    """``model.export`` into a temporary name beside ``target``, then renamed over it."""
    if fmt != "saved_model":
        with atomic_path(target) as tmp:
            model.export(str(tmp), format=fmt, verbose=False, **options)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".model.") as tmp:
        model.export(str(Path(tmp) / "model"), format="tf_saved_model", verbose=False)
        if target.exists():
            shutil.rmtree(target)
        os.replace(Path(tmp) / "model", target)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _check_index(config: dict[str, Any], run_dir: str | os.PathLike,
                 index: str | os.PathLike | None) -> dict[str, Any]:
    """``config`` with ``index`` in place of the index the run was trained on (its own cache
    folder); a one-line :class:`DataError` when ``index`` holds other classes than the run, or
    when none is given and the run's own is not on this machine (a preset's)."""
    from kerascv_emotion.data.index import read_index

    if index is None:
        if not Path(config["index"]).is_file():
            raise DataError(f"{run_dir} was trained on {config['index']}, which is not on this machine; an export is "
                            "checked on an index's val split (and int8 calibrated on its train split): give --index")
        return config
    check_index_classes(index, read_index(index).class_names, run_dir, config)
    return {**config, "index": str(Path(index).resolve()), "cache_dir": None}


def export_run(run_dir: str | os.PathLike, fmt: str, quantize: str | None = None,
               out_dir: str | os.PathLike | None = None, calibrate: bool = True,
               index: str | os.PathLike | None = None) -> dict[str, Any]:
    """Export ``RUN/model.keras`` as ``fmt`` into ``out_dir`` (default :func:`export_dir`),
    load it back in its runtime and compare it with the Keras model on the validation images
    of the run's index, or of ``index`` (a preset's index stays on the machine it was trained
    on); writes and returns ``export.json``'s content (``passed``: the check's verdict).
    The file includes the run's temperature (``temperature`` in ``export.json``, ``null``
    for none) unless ``calibrate`` is off (:mod:`kerascv_emotion.temperature`)."""
    _check(fmt, quantize)
    config, model, temperature = load_run_model(run_dir, calibrate)
    config = _check_index(config, run_dir, index)
    out_dir = Path(out_dir) if out_dir is not None else export_dir(run_dir, fmt, quantize)
    target = out_dir / FORMATS[fmt]
    images, targets = _images(config, "val")
    # before the export: the ONNX exporter refuses a model that has never been called
    expected = predict_batches(model, images, BATCH)
    options, n_calibration = _litert_options(quantize, config) if fmt == "litert" else ({}, 0)
    _write(model, target, fmt, options)
    run, runtime = _RUNNERS[fmt](target)
    got = predict_batches(run, images, BATCH)
    diff = np.abs(got - expected)
    report: dict[str, Any] = {
        "format": fmt, "quantize": quantize, "file": target.name, "size_bytes": _size(target),
        "runtime": runtime, "run": Path(run_dir).name, "arch": config.get("arch"), "temperature": temperature,
        "input_shape": [None, int(config["image_size"]), int(config["image_size"]), int(config["channels"])],
        "index": config["index"], "compared_on": {"split": "val", "images": len(images)},
        "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
    }
    if config.get("task", "classification") == "classification":
        keras_acc = float(np.mean(expected.argmax(1) == targets))
        export_acc = float(np.mean(got.argmax(1) == targets))
        report.update(keras_accuracy=keras_acc, export_accuracy=export_acc, accuracy_drop=keras_acc - export_acc,
                      top1_agreement=float(np.mean(got.argmax(1) == expected.argmax(1))))
    else:
        keras_rmse, export_rmse = _rmse(expected, targets), _rmse(got, targets)
        report.update(keras_rmse=keras_rmse, export_rmse=export_rmse, rmse_increase=export_rmse - keras_rmse)
    if quantize is None:
        report.update(criterion=f"max_abs_diff <= {FLOAT_TOLERANCE}", passed=report["max_abs_diff"] <= FLOAT_TOLERANCE)
    elif "accuracy_drop" in report:
        report.update(criterion=f"accuracy_drop <= {ACCURACY_TOLERANCE}",
                      passed=report["accuracy_drop"] <= ACCURACY_TOLERANCE)
    else:
        report.update(criterion=f"rmse_increase <= {RMSE_TOLERANCE}",
                      passed=report["rmse_increase"] <= RMSE_TOLERANCE)
    if n_calibration:
        report["calibration"] = {"split": "train", "images": n_calibration}
    if len(images):
        report["latency"] = _latency(target, fmt, to_input(images[0]))
    write_json(out_dir / "export.json", report)
    return report
