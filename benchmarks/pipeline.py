"""Input-pipeline benchmark: prints its figures (see benchmarks/README.md, "Input pipeline").

(a) epoch time of the paper's VGG at 64 px fed from the cache with ``paper_face`` augmentation
    by ``ImageBatches.as_tf_dataset`` (the feed training uses), over the same model fed in-memory float32 tensors without
    augmentation (ratio; target <= 1.10);
(b) cache build over N generated small images (48 px JPEG/PNG): time and the build process's
    peak resident memory (each build runs in a fresh child process; its ``VmHWM``), and the time ratio of
    the largest over the smallest N (target <= 11 for 100k/10k, peak RSS <= 1 GB at 100k);
(c) augmentation throughput (images/s, one thread) per named pipeline.

Usage::

    python benchmarks/pipeline.py --quick          # a few minutes on a 2-core CPU
    python benchmarks/pipeline.py                  # (a) 1024 images, (b) 10k and 100k, (c)
    python benchmarks/pipeline.py --only b --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from kerascv_emotion.data.index import DatasetIndex, IndexRecord  # noqa: E402

CLASSES = ["anger", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
DISTINCT = 512  # distinct encoded images; files cycle through them


def _encoded_images(size: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """``DISTINCT`` smooth random images (upscaled 6x6 noise), alternately JPEG and PNG."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(DISTINCT):
        small = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
        img = small.resize((size, size), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        fmt = "JPEG" if i % 2 == 0 else "PNG"
        img.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        out.append((".jpg" if fmt == "JPEG" else ".png", buf.getvalue()))
    return out


def generate_dataset(root: Path, n: int, size: int) -> DatasetIndex:
    """Write ``n`` image files (``size`` px) under ``root/<class>/`` and index them (all train)."""
    blobs = _encoded_images(size)
    for c in CLASSES:
        (root / c).mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        ext, data = blobs[i % DISTINCT]
        rel = f"{CLASSES[i % len(CLASSES)]}/{i:06d}{ext}"
        (root / rel).write_bytes(data)
        records.append(IndexRecord(rel, "train", CLASSES[i % len(CLASSES)]))
    return DatasetIndex(root, CLASSES, records)


# ---------------------------------------------------------------- (b) cache build
def _child_build(index_csv: str, cache_dir: str, size: int, workers: int) -> None:
    """Run in a fresh process: build the cache, print timing and this process's peak RSS."""
    from kerascv_emotion.data.cache import load_split
    from kerascv_emotion.data.index import read_index

    index = read_index(index_csv)
    start, start_cpu = time.perf_counter(), time.process_time()
    cached = load_split(index, "train", size, cache_dir=cache_dir, workers=workers, progress=False)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    print(json.dumps({"n": len(cached), "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mb": _vm_hwm_mb(),
                      "cache_mb": cached.cache_file.stat().st_size / 2**20}))


def _vm_hwm_mb() -> float | None:
    """This process's peak resident memory (Linux ``VmHWM``; reset by exec, unlike
    ``ru_maxrss``, which keeps the forking parent's size)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _build_in_child(csv_path: Path, cache_dir: Path, workers: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child-build", str(csv_path), str(cache_dir), "48", str(workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    shutil.rmtree(cache_dir)
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    # upper bound: the largest child so far, including what it inherited from this process
    row["children_maxrss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return row


def bench_cache(sizes: list[int], workdir: Path, repeat: int) -> dict[str, object]:
    """Build each size's cache ``repeat`` times in fresh child processes, sizes interleaved so
    that all see the same machine load; keep the fastest wall and CPU (user + system, all
    threads) times and the highest peak RSS. Also compares 1 and 2 decoding threads."""
    csv_paths = {}
    for n in sizes:
        start = time.perf_counter()
        csv_paths[n] = generate_dataset(workdir / f"data{n}", n, 48).write(workdir / f"index{n}.csv")
        print(f"  generated {n} files in {time.perf_counter() - start:.0f} s", flush=True)
    os.sync()  # the builds must not compete with write-back of the files just generated
    configs = [(n, w) for n in sizes for w in ([1, 2] if n == min(sizes) else [2])]
    runs: dict[tuple[int, int], list[dict[str, float]]] = {c: [] for c in configs}
    for _ in range(repeat):
        for n, w in configs:
            runs[(n, w)].append(_build_in_child(csv_paths[n], workdir / f"cache{n}", w))
    out: dict[str, object] = {"repeat": repeat, "builds": []}
    for (n, w), rs in runs.items():
        row = {"n": n, "workers": w, "seconds": min(r["seconds"] for r in rs),
               "all_seconds": [r["seconds"] for r in rs], "cpu_seconds": min(r["cpu_seconds"] for r in rs),
               "peak_rss_mb": max(r["peak_rss_mb"] for r in rs), "cache_mb": rs[0]["cache_mb"],
               "children_maxrss_mb": max(r["children_maxrss_mb"] for r in rs)}
        out["builds"].append(row)  # type: ignore[union-attr]
        print(f"  cache build n={n} workers={w}: {row['seconds']:.1f} s wall ({n / row['seconds']:.0f} img/s; "
              f"runs {', '.join(f'{t:.1f}' for t in row['all_seconds'])}), {row['cpu_seconds']:.1f} s CPU, "
              f"peak RSS {row['peak_rss_mb']:.0f} MB (ru_maxrss of children {row['children_maxrss_mb']:.0f} MB), "
              f"cache {row['cache_mb']:.0f} MB", flush=True)
    if len(sizes) > 1:
        best = {r["n"]: r for r in out["builds"] if r["workers"] == 2}  # type: ignore[union-attr]
        big, small = best[max(sizes)], best[min(sizes)]
        out["size_ratio"] = max(sizes) / min(sizes)
        out["time_ratio"] = big["seconds"] / small["seconds"]
        out["cpu_time_ratio"] = big["cpu_seconds"] / small["cpu_seconds"]
        print(f"  ratio {max(sizes)}/{min(sizes)} (workers=2): wall {out['time_ratio']:.2f}, "
              f"CPU {out['cpu_time_ratio']:.2f} (size ratio {out['size_ratio']:.0f})", flush=True)
    return out


# ---------------------------------------------------------------- (c) augmentation throughput
def bench_augment(n_images: int, size: int = 64) -> dict[str, float]:
    from kerascv_emotion.augment import get_augmentation

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, size, size, 3), dtype=np.uint8)
    out = {}
    for name in ("paper_face", "covid_paper", "light"):
        aug = get_augmentation(name, seed=0)
        for image in images[:8]:  # warm-up
            aug(image=image)
        start = time.perf_counter()
        for i in range(n_images):
            aug(image=images[i % len(images)])
        out[name] = n_images / (time.perf_counter() - start)
        print(f"  augment {name} at {size} px: {out[name]:.0f} images/s (one thread)", flush=True)
    return out


# ---------------------------------------------------------------- (a) VGG epoch time
def bench_epoch(n_images: int, epochs: int, workdir: Path, workers_list: list[int], repeat: int,
                pydataset: bool) -> dict[str, object]:
    """Epoch time (wall and process CPU; median over epochs 2.., best of ``repeat`` fits, the
    configurations interleaved) of VGG 64 px: in-memory tensors vs ``ImageBatches.as_tf_dataset``
    (what training uses) without and with paper_face, and optionally the ``PyDataset`` itself."""
    import keras

    from kerascv_emotion.data.cache import load_split
    from kerascv_emotion.data.loader import ImageBatches
    from kerascv_emotion.models import build_model

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.wall: list[float] = []
            self.cpu: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start, self.start_cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.wall.append(time.perf_counter() - self.start)
            self.cpu.append(time.process_time() - self.start_cpu)

    index = generate_dataset(workdir / "vgg_data", n_images, 64)
    cached = load_split(index, "train", 64, cache_dir=workdir / "vgg_cache", progress=False)
    x = np.asarray(cached.images, dtype=np.float32) / np.float32(255.0)
    y = np.eye(len(CLASSES), dtype=np.float32)[cached.label_ids]

    def fit(feed: str, workers: int, augment: str | None) -> tuple[float, float]:
        keras.utils.set_random_seed(0)
        model = build_model("vgg", (64, 64, 3), len(CLASSES))
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        timer = EpochTimer()
        if feed == "arrays":  # the baseline: in-memory tensors, no augmentation
            model.fit(x, y, batch_size=32, shuffle=True, epochs=epochs, verbose=0, callbacks=[timer])
            return statistics.median(timer.wall[1:]), statistics.median(timer.cpu[1:])
        ds = ImageBatches(cached, batch_size=32, augment=augment, seed=0, workers=workers)
        if feed == "tf_data":  # what training uses
            model.fit(ds.as_tf_dataset(), steps_per_epoch=len(ds), shuffle=False, epochs=epochs, verbose=0,
                      callbacks=[ds.epoch_callback(), timer])
        else:  # the PyDataset itself
            model.fit(ds, shuffle=False, epochs=epochs, verbose=0, callbacks=[timer])
        # the first epoch includes tracing
        return statistics.median(timer.wall[1:]), statistics.median(timer.cpu[1:])

    # (label, feed, workers, augmentation); "arrays" is the in-memory baseline
    configs = [("in_memory", "arrays", 0, None), ("tf_data_noaug_workers1", "tf_data", 1, None)]
    configs += [(f"tf_data_paper_face_workers{w}", "tf_data", w, "paper_face") for w in workers_list]
    if pydataset:
        configs += [("pydataset_paper_face_workers1", "pydataset", 1, "paper_face")]
    times: dict[str, list[tuple[float, float]]] = {c[0]: [] for c in configs}
    for _ in range(repeat):
        for label, feed, workers, augment in configs:
            times[label].append(fit(feed, workers, augment))
            print(f"  VGG 64 px, {n_images} images, {label}: {times[label][-1][0]:.2f} s/epoch wall, "
                  f"{times[label][-1][1]:.2f} s CPU", flush=True)
    result: dict[str, object] = {"n_images": n_images, "epochs": epochs, "batch_size": 32, "repeat": repeat}
    base_wall, base_cpu = min(t[0] for t in times["in_memory"]), min(t[1] for t in times["in_memory"])
    for label, *_ in configs:
        wall, cpu = min(t[0] for t in times[label]), min(t[1] for t in times[label])
        result[label] = {"wall_s": wall, "cpu_s": cpu, "wall_ratio": wall / base_wall, "cpu_ratio": cpu / base_cpu}
        print(f"  best of {repeat}: {label}: {wall:.2f} s wall (ratio {wall / base_wall:.3f}), "
              f"{cpu:.2f} s CPU (ratio {cpu / base_cpu:.3f})", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: (a) 256 images, (b) 2k and 10k, (c) 300 images")
    parser.add_argument("--only", default="abc", help="which parts to run, e.g. 'b' or 'ac'")
    parser.add_argument("--sizes", default=None, help="comma-separated image counts for (b)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per configuration in (a) and (b); the fastest counts")
    parser.add_argument("--pydataset", action="store_true", help="(a): also time the PyDataset feed")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir, removed)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--child-build", nargs=4, metavar=("INDEX", "CACHE", "SIZE", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_build:
        csv_path, cache_dir, size, workers = args.child_build
        _child_build(csv_path, cache_dir, int(size), int(workers))
        return

    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([2000, 10000] if args.quick else [10000, 100000])
    report: dict[str, object] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(), "quick": args.quick,
    }
    print(f"input-pipeline benchmark on {report['machine']}, quick={args.quick}", flush=True)
    with tempfile.TemporaryDirectory(prefix="kce_bench_", dir=args.workdir) as tmp:
        workdir = Path(tmp)
        if "c" in args.only:
            print("(c) augmentation throughput", flush=True)
            report["augment_images_per_s"] = bench_augment(300 if args.quick else 3000)
        if "b" in args.only:
            print("(b) cache build", flush=True)
            report["cache"] = bench_cache(sizes, workdir, args.repeat)
        if "a" in args.only:
            print("(a) VGG epoch time", flush=True)
            report["epoch"] = bench_epoch(256 if args.quick else 1024, 3, workdir, [1, 2], args.repeat,
                                          args.pydataset)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
