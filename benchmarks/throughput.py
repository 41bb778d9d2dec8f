"""Training throughput against the CPU's fp32 peak (issue 19, item 4): prints its figures.

For one architecture (default the FER2013 vgg: 48x48x1, 7 classes, batch 64) it counts the
forward FLOPs per image from the layers (Conv2D / DepthwiseConv2D / SeparableConv2D / Dense:
2 x multiply-adds; the rest ignored), takes training as 3x forward (forward + two backward
products), times ``--steps`` training steps on in-memory random images (after warm-up steps,
median of ``--repeats``) for each batch size and ``jit_compile`` setting asked for, and prints
images/s, GFLOP/s and the share of the peak ``cores x GHz x flops/cycle`` (arguments: read
``lscpu``; 32 fp32 flops/cycle = two 256-bit FMA pipes, as on AMD Zen 3/4).

    python benchmarks/throughput.py --ghz 2.6 --cores 2 [--batch-sizes 32,64,128] [--jit both]

``--cores`` is also the number of TensorFlow threads (intra- and inter-op).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def forward_flops(model: object) -> int:
    """Forward FLOPs of one image through ``model``'s convolution and dense layers."""
    import keras

    total = 0
    for layer in model._flatten_layers(include_self=False):  # nested models included
        if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D | keras.layers.SeparableConv2D
                      | keras.layers.Dense):
            out = layer.output.shape
            positions = 1
            for side in out[1:-1]:
                positions *= int(side)
            if isinstance(layer, keras.layers.Dense):
                total += 2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1]) * positions
            elif isinstance(layer, keras.layers.SeparableConv2D):
                kh, kw, cin, mult = layer.depthwise_kernel.shape
                total += 2 * positions * (int(kh) * int(kw) * int(cin) * int(mult) + int(cin) * int(mult) * int(out[-1]))
            elif isinstance(layer, keras.layers.DepthwiseConv2D):
                kh, kw, cin, mult = layer.kernel.shape
                total += 2 * positions * int(kh) * int(kw) * int(cin) * int(mult)
            else:
                kh, kw, cin, cout = layer.kernel.shape
                total += 2 * positions * int(kh) * int(kw) * int(cin) * int(cout)
    return total


def measure(arch: str, size: int, channels: int, classes: int, batch: int, jit: bool, steps: int,
            repeats: int) -> float:
    """Median images/s of ``steps`` training steps (``train_on_batch``) after two warm-up steps."""
    import keras
    import numpy as np

    from kerascv_emotion.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model(arch, input_shape=(size, size, channels), num_classes=classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", jit_compile=jit)
    rng = np.random.default_rng(0)
    x = rng.random((batch, size, size, channels), dtype=np.float32)
    y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch)]
    for _ in range(2):
        model.train_on_batch(x, y)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        rates.append(steps * batch / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="vgg")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--classes", type=int, default=7)
    parser.add_argument("--batch-sizes", default="64")
    parser.add_argument("--jit", choices=["off", "on", "both"], default="off")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="Cores the peak counts and TF uses.")
    parser.add_argument("--ghz", type=float, required=True, help="Sustained clock (lscpu; BogoMIPS / 2 on KVM).")
    parser.add_argument("--flops-per-cycle", type=float, default=32.0, help="fp32 flops per cycle per core.")
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.cores)
    tf.config.threading.set_inter_op_parallelism_threads(args.cores)
    import keras

    from kerascv_emotion.models import build_model

    model = build_model(args.arch, input_shape=(args.size, args.size, args.channels), num_classes=args.classes)
    flops = forward_flops(model)
    peak = args.cores * args.ghz * args.flops_per_cycle
    print(json.dumps({"arch": args.arch, "input": [args.size, args.size, args.channels], "params": model.count_params(),
                      "forward_mflops_per_image": flops / 1e6, "train_mflops_per_image": 3 * flops / 1e6,
                      "peak_gflops": peak, "cpu": platform.processor() or platform.machine(),
                      "keras": keras.__version__}))
    jits = {"off": [False], "on": [True], "both": [False, True]}[args.jit]
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        for jit in jits:
            rate = measure(args.arch, args.size, args.channels, args.classes, batch, jit, args.steps, args.repeats)
            gflops = rate * 3 * flops / 1e9
            print(json.dumps({"batch_size": batch, "jit_compile": jit, "images_per_s": round(rate, 1),
                              "gflops": round(gflops, 2), "share_of_peak": round(gflops / peak, 4)}), flush=True)


if __name__ == "__main__":
    main()
