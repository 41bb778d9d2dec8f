"""Latency of exported models (see benchmarks/README.md, "Latency (exported models)").

For each run folder: export float32 and int8 LiteRT with :func:`kerascv_emotion.export.export_run`
(into ``RUN/export/litert`` and ``RUN/export/litert-int8``; the export checks the file against
the Keras model on the run's validation images), then time every file the same way, together
with optional peer ``.tflite`` files (``--peer``, repeatable; e.g. the ``fer`` package's model
as LiteRT): single-image latency on 1 CPU thread, median over ``--runs`` timed runs after warm-up
(:func:`kerascv_emotion.export.single_image_latency`) on a random input of the model's shape.
Prints one row per file: latency, size on disk and validation accuracy (from ``export.json``;
n/a for the peer, whose accuracy this script does not measure).

Usage::

    python benchmarks/latency.py results/fer2013/vgg results/fer2013/mobilenet [--peer fer.tflite ...] [--runs 200]
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from kerascv_emotion.export import (  # noqa: E402
    FORMATS,
    LATENCY_RUNS,
    export_run,
    file_runner,
    single_image_latency,
)

VARIANTS = ((None, "litert"), ("int8", "litert-int8"))
"""``(quantize, label)`` of each LiteRT export timed per run."""


def cpu_name() -> str:
    """The CPU's model name (``lscpu``'s "Model name"), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def random_input(path: Path) -> np.ndarray:
    """One random image ``(H, W, C)`` of a ``.tflite`` file's declared input shape and dtype
    (float: uniform 0..1, integer: the dtype's full range)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the TensorFlow wheel's own copy (deprecated)
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    detail = Interpreter(model_path=str(path)).get_input_details()[0]
    shape, dtype = [int(d) for d in detail["shape"][1:]], np.dtype(detail["dtype"])
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    return rng.uniform(0.0, 1.0, size=shape).astype(dtype)


def measure(path: Path, runs: int) -> tuple[dict[str, Any], str]:
    """:func:`single_image_latency` of a ``.tflite`` file on 1 CPU thread, and the runtime."""
    run, runtime = file_runner(path, "litert", threads=1)
    return single_image_latency(run, random_input(path), runs=runs), runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run folders (with model.keras and config.json)")
    parser.add_argument("--peer", type=Path, action="append", default=[],
                        help="a peer model's .tflite file, timed the same way (repeat for several)")
    parser.add_argument("--runs", dest="timed", type=int, default=4 * LATENCY_RUNS,
                        help=f"timed single-image runs per file (at least {LATENCY_RUNS})")
    args = parser.parse_args()
    if args.timed < LATENCY_RUNS:
        parser.error(f"--runs must be at least {LATENCY_RUNS}")
    if not args.runs and not args.peer:
        parser.error("give run folders and/or --peer")

    rows = []
    for run_dir in args.runs:
        for quantize, label in VARIANTS:
            report = export_run(run_dir, "litert", quantize)
            path = run_dir / "export" / label / FORMATS["litert"]
            latency, runtime = measure(path, args.timed)
            accuracy = report.get("export_accuracy")
            rows.append((f"{run_dir.name} ({report['arch']})", label, report["input_shape"][1:], report["size_bytes"],
                         latency, accuracy, report["compared_on"]["images"], runtime))
    for peer in args.peer:
        latency, runtime = measure(peer, args.timed)
        rows.append((f"peer {peer.name}", "litert", list(random_input(peer).shape), peer.stat().st_size, latency,
                     None, 0, runtime))

    print(f"CPU: {cpu_name()}; single image, 1 thread, median (p90) of {args.timed} runs after warm-up")
    print("| model | export | input HxWxC | size (MB) | latency ms median (p90) | val accuracy (images) | runtime |")
    print("|---|---|---|---:|---:|---:|---|")
    for name, label, shape, size, latency, accuracy, images, runtime in rows:
        acc = "n/a" if accuracy is None else f"{accuracy:.4f} ({images})"
        print(f"| {name} | {label} | {'x'.join(str(s) for s in shape)} | {size / 1e6:.3f} | "
              f"{latency['ms_median']:.3f} ({latency['ms_p90']:.3f}) | {acc} | {runtime} |")


if __name__ == "__main__":
    main()
