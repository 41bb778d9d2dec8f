"""Photos per second, end to end (decode + face detection + expression model), this project's
``EmotionRecognizer`` (bundled preset, batched across photos; YuNet and Haar) against the
``fer`` package's own pipeline (``FER()``'s defaults: its Haar cascade and its quantized
mini-Xception, one ``detect_emotions`` call per photo, the way its README runs it).
See benchmarks/README.md, "Photos per second".

The peer is not a dependency: install it beside, without its dependencies (its MTCNN option
pulls PyTorch, which its default Haar path never imports)::

    pip install --no-deps --target /tmp/fer fer==25.10.3 "setuptools<81"  # fer imports pkg_resources
    PYTHONPATH=/tmp/fer python benchmarks/photos_per_second.py --ckplus ../shared/data/ckplus48

Photos: ``--photos DIR`` (every image in it), else ``--count`` (100) photos made here from real
faces: CK+48 face crops (``--ckplus``; 1-3 per photo, upscaled to 120-200 px) pasted at random
places on 640x480 backgrounds cut from the test photos of ``tests/data`` (scikit-image's
astronaut, chelsea and coffee), every tenth photo without a face. Each pipeline is timed over
the whole folder after one warm-up photo (model loading excluded), ``--repeats`` times; the
median is reported, with the faces each one found (speed context, not an accuracy figure).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from latency import cpu_name  # noqa: E402  (benchmarks/ is the script's folder)
from PIL import Image  # noqa: E402

TEST_PHOTOS = Path(__file__).resolve().parents[1] / "tests" / "data"
CANVAS = (640, 480)  # width, height


def make_photos(folder: Path, count: int, ckplus: Path, seed: int = 0) -> list[Path]:
    """``count`` JPEG photos in ``folder``: 1-3 CK+48 faces on a test-photo background each,
    every tenth photo a background only. Returns their paths."""
    rng = np.random.default_rng(seed)
    faces = sorted(p for p in ckplus.rglob("*.png"))
    if not faces:
        sys.exit(f"error: no CK+48 PNG faces under {ckplus}; give --ckplus or --photos")
    backgrounds = [Image.open(p).convert("RGB") for p in sorted(TEST_PHOTOS.glob("*.jpg"))]
    paths = []
    for i in range(count):
        source = backgrounds[i % len(backgrounds)]
        scale = max(CANVAS[0] / source.width, CANVAS[1] / source.height)
        photo = source.resize((int(source.width * scale) + 1, int(source.height * scale) + 1)).crop((0, 0, *CANVAS))
        if i % 10 != 9:
            for slot in range(int(rng.integers(1, 4))):
                side = int(rng.integers(120, 201))
                face = Image.open(faces[int(rng.integers(len(faces)))]).convert("RGB").resize((side, side), Image.BICUBIC)
                x = slot * CANVAS[0] // 3 + int(rng.integers(0, max(1, CANVAS[0] // 3 - side)))
                photo.paste(face, (x, int(rng.integers(0, CANVAS[1] - side))))
        path = folder / f"photo_{i:03d}.jpg"
        photo.save(path, quality=90)
        paths.append(path)
    return paths


def time_pipeline(run: Callable[[Sequence[Path]], int], photos: Sequence[Path], repeats: int) -> tuple[float, int]:
    """Median seconds of ``run(photos)`` over ``repeats`` (after a warm-up on one photo), and the
    faces the last repeat found."""
    run(photos[:1])
    seconds, found = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        found = run(photos)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), found


def ours(detector: str, batch_size: int) -> Callable[[Sequence[Path]], int]:
    """This project: the default preset, faces of all photos batched into each model call."""
    from kerascv_emotion import EmotionRecognizer

    recognizer = EmotionRecognizer.from_preset(detector=detector, batch_size=batch_size)
    return lambda photos: sum(map(len, recognizer.predict_many([str(p) for p in photos]).values()))


def fer_package() -> Callable[[Sequence[Path]], int]:
    """The ``fer`` package as its README runs it: ``FER()`` then ``detect_emotions`` per photo."""
    import cv2

    try:
        from fer.fer import FER  # fer 25.x no longer re-exports it from the package
    except ImportError as exc:
        sys.exit(f"error: the fer package is not importable ({exc}); install it as the module docstring says")
    detector = FER()
    return lambda photos: sum(len(detector.detect_emotions(cv2.imread(str(p)))) for p in photos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, help="a folder of photos (default: make --count photos)")
    parser.add_argument("--ckplus", type=Path, default=Path("../shared/data/ckplus48"), help="CK+48 folder")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.photos:
            photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        else:
            photos = make_photos(Path(tmp), args.count, args.ckplus)
        pipelines = {"fer package (Haar + mini-Xception tflite, per photo)": fer_package,
                     "kerascv_emotion preset, YuNet, batched": lambda: ours("yunet", args.batch_size),
                     "kerascv_emotion preset, Haar, batched": lambda: ours("haar", args.batch_size)}
        print(f"{len(photos)} photos; CPU: {cpu_name()} ({os.cpu_count()} logical); "
              f"load average before: {os.getloadavg()[0]:.2f}; python {platform.python_version()}")
        rows = []
        for name, make in pipelines.items():
            seconds, found = time_pipeline(make(), photos, args.repeats)
            rows.append((name, seconds, found))
        base = rows[0][1]
        print(f"| pipeline | faces found | seconds (median of {args.repeats}) | photos/s | speed vs fer |")
        print("|---|---:|---:|---:|---:|")
        for name, seconds, found in rows:
            print(f"| {name} | {found} | {seconds:.2f} | {len(photos) / seconds:.1f} | {base / seconds:.2f}x |")
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
