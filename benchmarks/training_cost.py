"""Training-cost benchmark: prints its figures (see benchmarks/README.md, "Training cost").

Two questions, each answered by ratios measured in the same run:

* ``determinism``: training throughput (images/s) of a model with TensorFlow op determinism
  on vs off. Op determinism is process-wide, so each set-up trains in its own subprocess;
  set-ups alternate within each round so a load change hits both alike. The first epoch
  (tracing) is left out; the figure is the median of the remaining epochs over all rounds.
* ``precise_bn``: seconds of one :func:`recompute_batchnorm_statistics` call at N images
  over the seconds of one training epoch of ``--train-images`` images (median of repeats,
  in one process), i.e. the share of an epoch that the ``PreciseBatchNorm`` callback adds.

Usage::

    python benchmarks/training_cost.py --quick                         # ~3 minutes, 2-core CPU
    python benchmarks/training_cost.py --arch vgg --size 48 --channels 1 --train-images 28709
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _data(n: int, size: int, channels: int, classes: int) -> tuple:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((n, size, size, channels), dtype=np.float32)
    return x, np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]


def _model(args: argparse.Namespace) -> object:
    import keras

    from kerascv_emotion.models import build_model

    model = build_model(args.arch, input_shape=(args.size, args.size, args.channels), num_classes=args.classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    return model


def child_throughput(args: argparse.Namespace) -> None:
    """One subprocess: train ``--epochs`` epochs, print images/s of each epoch as JSON."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    x, y = _data(args.images, args.size, args.channels, args.classes)
    model = _model(args)
    rates = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)
        rates.append(len(x) / (time.perf_counter() - start))
    print(json.dumps(rates[1:]))


def determinism(args: argparse.Namespace) -> dict[str, float]:
    rates: dict[str, list[float]] = {"off": [], "on": []}
    base = [sys.executable, __file__, "--child", "--arch", args.arch, "--size", str(args.size),
            "--channels", str(args.channels), "--images", str(args.images), "--epochs", str(args.epochs),
            "--batch-size", str(args.batch_size), "--classes", str(args.classes)]
    for _ in range(args.rounds):
        for setup in ("off", "on"):
            command = base + (["--deterministic"] if setup == "on" else [])
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            rates[setup] += json.loads(out.strip().splitlines()[-1])
    off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
    return {"images_per_s_off": off, "images_per_s_on": on, "throughput_cost": 1.0 - on / off}


def precise_bn(args: argparse.Namespace) -> dict[str, float]:
    import keras

    from kerascv_emotion.batchnorm_statistics import recompute_batchnorm_statistics

    keras.utils.set_random_seed(0)
    x, y = _data(args.images, args.size, args.channels, args.classes)
    model = _model(args)
    fit_times, bn_times = [], []
    for _ in range(args.epochs):
        start = time.perf_counter()
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, shuffle=False)
        fit_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        recompute_batchnorm_statistics(model, x[:args.bn_images])
        bn_times.append(time.perf_counter() - start)
    per_image = statistics.median(fit_times[1:]) / len(x)
    bn = statistics.median(bn_times[1:])
    return {"epoch_s_at_train_images": per_image * args.train_images, "precise_bn_s": bn,
            "share_of_epoch": bn / (per_image * args.train_images)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="vgg")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--classes", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=2048, help="images trained per epoch in the benchmark")
    parser.add_argument("--train-images", type=int, default=28709, help="epoch size the BN share refers to")
    parser.add_argument("--bn-images", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--parts", default="determinism,precise_bn")
    parser.add_argument("--quick", action="store_true", help="1024 images, 3 epochs, 2 rounds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--deterministic", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.images, args.epochs, args.rounds = 1024, 3, 2
    if args.child:
        child_throughput(args)
        return
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; {args.arch} "
          f"{args.size}x{args.size}x{args.channels}, batch {args.batch_size}, {args.images} images/epoch")
    results = {}
    if "determinism" in args.parts:
        results["determinism"] = determinism(args)
    if "precise_bn" in args.parts:
        results["precise_bn"] = precise_bn(args)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
