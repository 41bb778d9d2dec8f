"""What a distilled student's training step costs against plain training (issue 19, item 4):
prints its figures.

A FER2013-shaped vgg student (48x48x1, 7 classes, batch 64) is trained by ``train_on_batch`` on
in-memory random images: plain (the compiled label loss), distilled with the teacher run on every
batch (``--soft-targets online``), and with the teacher's outputs carried in ``y`` (``offline``).
The teacher is the mean of ``--members`` fresh vggs (an ensemble's cost; weights do not matter
for time). The three are interleaved in ``--repeats`` rounds of ``--steps`` steps after warm-up;
the medians and their ratios to plain are printed, and the offline mode's one-off teacher pass
(flip-averaged, :func:`kerascv_emotion.distillation.offline_soft_targets`) as seconds per
28,709 images (one FER2013 training epoch's worth).

    python benchmarks/distill_cost.py [--members 3] [--steps 20] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FER_TRAIN_IMAGES = 28_709
SHAPE, CLASSES = (48, 48, 1), 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=3, help="vggs averaged by the teacher")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round and mode")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras
    import numpy as np

    from kerascv_emotion.distillation import ProbabilityDistiller, offline_soft_targets
    from kerascv_emotion.models import build_model
    from kerascv_emotion.settings import TrainSettings
    from kerascv_emotion.training import compile_model, make_optimizer

    keras.utils.set_random_seed(0)
    settings = TrainSettings(arch="vgg", index="unused.csv", image_size=SHAPE[0], channels=SHAPE[2])

    def vgg() -> keras.Model:
        return build_model("vgg", input_shape=SHAPE, num_classes=CLASSES, dropout=0.2, pool_dropout_rate=0.0)

    inputs = keras.Input(SHAPE)
    members = [keras.Model(m.inputs, m.outputs[0], name=f"member_{i}")(inputs)
               for i, m in enumerate(vgg() for _ in range(args.members))]
    teacher = keras.Model(inputs, keras.layers.Average()(members) if len(members) > 1 else members[0])
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch_size * 4, *SHAPE), dtype=np.uint8)
    x = images[: args.batch_size].astype(np.float32) / 255.0
    y = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, args.batch_size)]
    weights = np.ones(args.batch_size, dtype=np.float32)

    start = time.perf_counter()
    targets = offline_soft_targets(teacher, images, args.batch_size)
    pass_seconds = (time.perf_counter() - start) / len(images) * FER_TRAIN_IMAGES

    plain = vgg()
    compile_model(plain, settings, make_optimizer(settings, 1e-3, 100, 1))
    modes: dict[str, tuple[keras.Model, np.ndarray]] = {"plain": (plain, y)}
    for name, offline in (("online", False), ("offline", True)):
        model = ProbabilityDistiller(teacher, vgg(), temperature=2.0, alpha=0.5, offline=offline)
        compile_model(model, settings, make_optimizer(settings, 1e-3, 100, 1))
        modes[name] = (model, np.concatenate([y, targets[: args.batch_size]], axis=1) if offline else y)
    for model, labels in modes.values():  # warm-up: tracing
        for _ in range(3):
            model.train_on_batch(x, labels, sample_weight=weights)
    seconds: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(args.repeats):
        for name, (model, labels) in modes.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, labels, sample_weight=weights)
            seconds[name].append((time.perf_counter() - start) / args.steps)
    step = {name: statistics.median(values) for name, values in seconds.items()}
    steps_per_epoch = -(-FER_TRAIN_IMAGES // args.batch_size)
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} threads; teacher: "
          f"{args.members} vgg(s); batch {args.batch_size}; {args.steps} steps x {args.repeats} rounds")
    for name, value in step.items():
        print(f"{name:8s} {1000 * value:7.1f} ms/step  {value * steps_per_epoch:6.1f} s per FER2013 epoch  "
              f"ratio to plain {value / step['plain']:.2f}")
    print(f"offline teacher pass (flip-averaged, once): {pass_seconds:.1f} s per {FER_TRAIN_IMAGES:,} images "
          f"= {pass_seconds / (step['plain'] * steps_per_epoch):.2f} plain epochs")


if __name__ == "__main__":
    main()
