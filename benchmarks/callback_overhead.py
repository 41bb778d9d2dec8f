"""Callback-overhead benchmark: prints its figures (see benchmarks/README.md, "Callback overhead").

Epoch time of the paper's VGG at 64 px (``build_model("vgg", (64, 64, 3), 8)``) trained on
random images, in three set-ups that all end each epoch with validation results:

* ``keras``: ``fit(validation_data=(x_val, y_val))``, Keras's own validation pass;
* ``per_class``: ``fit`` without ``validation_data`` plus ``PerClassMetrics`` (one pass gives
  the loss and every per-class metric); ratio over ``keras``, target <= 1.03;
* ``keras+predict``: Keras's validation plus a callback that predicts the validation set
  again for per-class metrics (the usual two-pass set-up the callback replaces).

The first epoch of every fit (tracing, warm-up) is left out; each figure is the median of
the remaining epochs over all rounds. Set-ups are interleaved within a round, so a load
change on a shared machine hits them alike. Wall and process CPU time are both reported,
and the validation step alone (``evaluate`` vs ``PerClassMetrics.compute`` vs ``evaluate``
+ ``predict``) is timed separately, which is far less noisy than whole epochs.

Usage::

    python benchmarks/callback_overhead.py --quick     # ~7 minutes on a busy 2-core CPU
    python benchmarks/callback_overhead.py             # 3000 train / 300 val images (~40 min there)
    python benchmarks/callback_overhead.py --parts validation   # the validation step alone
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerascv_emotion.callbacks import PerClassMetrics  # noqa: E402
from kerascv_emotion.metrics import classification_metrics  # noqa: E402
from kerascv_emotion.models import build_model  # noqa: E402

CLASSES = ["anger", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
SETUPS = ("keras", "per_class", "keras+predict")


class EpochTimer(keras.callbacks.Callback):
    """Per epoch: wall seconds, process CPU seconds (less sensitive to other processes on a
    shared machine) and the wall seconds after the last training batch (the validation
    phase: Keras's own validation and the callbacks before this one). Put it last."""

    def __init__(self) -> None:
        super().__init__()
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.validation: list[float] = []
        self._start = self._cpu_start = self._last_batch = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start, self._cpu_start = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._last_batch = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        self.wall.append(now - self._start)
        self.cpu.append(time.process_time() - self._cpu_start)
        self.validation.append(now - self._last_batch)


class PredictAgain(keras.callbacks.Callback):
    """The two-pass set-up: after Keras's validation, predict the validation set again."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        probs = self.model.predict(self.x, batch_size=self.batch_size, verbose=0)
        classification_metrics(self.y, probs, CLASSES)


def synthetic(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 images ``(n, size, size, 3)`` in [0, 1] and label ids ``(n,)``."""
    rng = np.random.default_rng(seed)
    return rng.random((n, size, size, 3), dtype=np.float32), rng.integers(0, len(CLASSES), n)


def timed_fit(setup: str, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
              size: int, epochs: int, batch_size: int) -> dict[str, list[float]]:
    """Fit a fresh, identically initialised VGG for ``epochs + 1`` epochs; the timed epochs'
    ``{"wall", "cpu", "validation"}`` seconds."""
    keras.utils.set_random_seed(0)
    model = build_model("vgg", (size, size, 3), len(CLASSES))
    model.compile(keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    kwargs: dict[str, Any] = {"validation_data": val}
    if setup == "keras":
        callbacks: list[keras.callbacks.Callback] = [timer]
    elif setup == "per_class":
        callbacks = [PerClassMetrics(val, class_names=CLASSES, batch_size=batch_size), timer]
        kwargs = {}
    else:
        callbacks = [PredictAgain(*val, batch_size=batch_size), timer]
    model.fit(*train, epochs=epochs + 1, batch_size=batch_size, callbacks=callbacks, verbose=0, **kwargs)
    return {"wall": timer.wall[1:], "cpu": timer.cpu[1:], "validation": timer.validation[1:]}


def validation_passes(val: tuple[np.ndarray, np.ndarray], size: int, repeats: int,
                      batch_size: int) -> dict[str, dict[str, list[float]]]:
    """The validation step alone on one VGG, ``repeats`` interleaved times (after 2 warm-ups):
    ``model.evaluate``; ``PerClassMetrics.compute`` (pass + metrics); ``evaluate`` then
    ``predict`` + metrics. ``{setup: {"wall", "cpu"}}`` seconds."""
    keras.utils.set_random_seed(0)
    model = build_model("vgg", (size, size, 3), len(CLASSES))
    model.compile(keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callback = PerClassMetrics(val, class_names=CLASSES, batch_size=batch_size)
    callback.set_model(model)
    again = PredictAgain(*val, batch_size=batch_size)
    again.set_model(model)
    runs = {
        "keras": lambda: model.evaluate(*val, batch_size=batch_size, verbose=0),
        "per_class": callback.compute,
        "keras+predict": lambda: (model.evaluate(*val, batch_size=batch_size, verbose=0),
                                  again.on_epoch_end(0)),
    }
    out: dict[str, dict[str, list[float]]] = {s: {"wall": [], "cpu": []} for s in SETUPS}
    for repeat in range(repeats + 2):
        for setup in SETUPS:
            wall, cpu = time.perf_counter(), time.process_time()
            runs[setup]()
            if repeat >= 2:
                out[setup]["wall"].append(time.perf_counter() - wall)
                out[setup]["cpu"].append(time.process_time() - cpu)
    return out


def epoch_timings(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                  args: argparse.Namespace) -> dict[str, Any]:
    """Time ``args.rounds`` interleaved fits per set-up; print and return medians and ratios."""
    report: dict[str, Any] = {}
    measures = ("wall", "cpu", "validation")
    seconds: dict[str, dict[str, list[float]]] = {s: {m: [] for m in measures} for s in SETUPS}
    for round_index in range(args.rounds):
        for setup in SETUPS:
            times = timed_fit(setup, train, val, args.size, args.epochs, args.batch_size)
            for m in measures:
                seconds[setup][m] += times[m]
            print(f"  round {round_index + 1} {setup:>14}: epoch " + ", ".join(f"{t:.2f}" for t in times["wall"])
                  + " s; after last batch " + ", ".join(f"{t:.3f}" for t in times["validation"]) + " s",
                  flush=True)
    median = {s: {m: statistics.median(v) for m, v in per.items()} for s, per in seconds.items()}
    report["epoch_seconds"] = seconds
    report["median_seconds"] = median
    report["ratio_per_class"] = {m: median["per_class"][m] / median["keras"][m] for m in ("wall", "cpu")}
    report["ratio_keras_plus_predict"] = {m: median["keras+predict"][m] / median["keras"][m] for m in ("wall", "cpu")}
    print(f"{'median seconds':>28}: {'epoch wall':>10} {'epoch CPU':>10} {'validation':>10}")
    for setup in SETUPS:
        print(f"{setup:>28}: " + " ".join(f"{median[setup][m]:>10.3f}" for m in measures))
    ratio, again = report["ratio_per_class"], report["ratio_keras_plus_predict"]
    print(f"PerClassMetrics instead of validation_data: {ratio['wall']:.3f}x epoch wall time, "
          f"{ratio['cpu']:.3f}x CPU time (target <= 1.03: {'met' if ratio['wall'] <= 1.03 else 'NOT met'})")
    print(f"validation_data + a callback predicting again: {again['wall']:.3f}x wall, {again['cpu']:.3f}x CPU")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: 512 train, 128 val, 2 timed epochs")
    parser.add_argument("--train", type=int, default=3000, help="training images")
    parser.add_argument("--val", type=int, default=300, help="validation images")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per fit (after 1 warm-up epoch)")
    parser.add_argument("--rounds", type=int, default=1, help="fits per set-up, interleaved")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats of the validation step alone")
    parser.add_argument("--parts", default="epochs,validation",
                        help="comma-separated: 'epochs' (fit timings), 'validation' (validation step alone)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.quick:
        args.train, args.val, args.epochs, args.repeats = 512, 128, 2, 5
    parts = set(args.parts.split(","))

    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}",
        "keras": keras.__version__, "backend": keras.backend.backend(),
        "train": args.train, "val": args.val, "size": args.size, "epochs": args.epochs,
        "rounds": args.rounds, "batch_size": args.batch_size,
    }
    print(f"callback overhead on {report['machine']}: VGG {args.size} px, {args.train} train / "
          f"{args.val} val images, {args.epochs} timed epochs x {args.rounds} round(s)", flush=True)
    val = synthetic(args.val, args.size, 2)
    if "validation" in parts:
        passes = validation_passes(val, args.size, args.repeats, args.batch_size)
        median = {s: {m: statistics.median(v) for m, v in per.items()} for s, per in passes.items()}
        report["validation_step_seconds"] = passes
        report["validation_step_median"] = median
        print(f"validation step alone, median of {args.repeats}: " + "; ".join(
            f"{s} {median[s]['wall']:.3f} s wall / {median[s]['cpu']:.3f} s CPU" for s in SETUPS), flush=True)
    if "epochs" in parts:
        train = synthetic(args.train, args.size, 1)
        report.update(epoch_timings(train, val, args))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
