"""Eye-line alignment on and off (``predict --align``): expression accuracy of a preset on real
labelled faces, upright and tilted, found by YuNet in photos. See benchmarks/README.md,
"Eye-line alignment".

Each CK+48 face (``--ckplus``; its label from its folder, CK+ names mapped to the preset's:
``sadness`` -> ``sad``; classes the preset lacks, e.g. ``contempt``, are left out) is upscaled to
160 px, turned by an angle drawn from ``[-max, max]`` degrees (``--max-angle``; 0 keeps it
upright) and pasted on a mid-grey 400x400 photo; the recognizer detects faces (YuNet) and
classifies the largest, with and without alignment. Faces YuNet misses count as wrong for both.

    python benchmarks/alignment.py --ckplus ../shared/data/ckplus48 --max-angle 0 --max-angle 25
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from latency import cpu_name  # noqa: E402  (benchmarks/ is the script's folder)
from PIL import Image  # noqa: E402

if TYPE_CHECKING:
    from kerascv_emotion import EmotionRecognizer

CK_TO_PRESET = {"sadness": "sad"}
SIDE, CANVAS = 160, 400


def tilted_photos(ckplus: Path, classes: list[str], max_angle: float, folder: Path,
                  seed: int = 0) -> list[tuple[Path, str]]:
    """One photo per CK+48 face whose (mapped) class the preset has: ``(path, label)``."""
    rng = np.random.default_rng(seed)
    photos = []
    for face in sorted(ckplus.rglob("*.png")):
        label = CK_TO_PRESET.get(face.parent.name, face.parent.name)
        if label not in classes:
            continue
        img = Image.open(face).convert("RGB").resize((SIDE, SIDE), Image.BICUBIC)
        img = img.rotate(float(rng.uniform(-max_angle, max_angle)), Image.BICUBIC, expand=True, fillcolor=(128,) * 3)
        photo = Image.new("RGB", (CANVAS, CANVAS), (128, 128, 128))
        photo.paste(img, ((CANVAS - img.width) // 2, (CANVAS - img.height) // 2))
        path = folder / f"{label}_{face.stem}.png"
        photo.save(path)
        photos.append((path, label))
    return photos


def accuracy(recognizer: EmotionRecognizer, photos: list[tuple[Path, str]]) -> tuple[float, int]:
    """Accuracy of the largest face's label over ``photos``, and the photos with a face found."""
    records = recognizer.predict_many([str(p) for p, _ in photos])
    right = found = 0
    for path, label in photos:
        faces = records.get(str(path), [])
        if faces:
            found += 1
            right += max(faces, key=lambda r: r["box"][2] * r["box"][3])["label"] == label
    return right / len(photos), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckplus", type=Path, default=Path("../shared/data/ckplus48"))
    parser.add_argument("--preset", default="fer2013")
    parser.add_argument("--max-angle", type=float, action="append", help="degrees (repeatable; default 0 and 25)")
    args = parser.parse_args()
    from kerascv_emotion import EmotionRecognizer

    recognizers = {align: EmotionRecognizer.from_preset(args.preset, align=align) for align in (False, True)}
    classes = recognizers[False].classes
    print(f"preset {args.preset}; CPU: {cpu_name()}")
    print("| faces tilted by up to | photos | faces found | accuracy, no alignment | accuracy, --align |")
    print("|---:|---:|---:|---:|---:|")
    for max_angle in args.max_angle or [0.0, 25.0]:
        with tempfile.TemporaryDirectory() as tmp:
            photos = tilted_photos(args.ckplus, classes, max_angle, Path(tmp))
            (plain, found), (aligned, _) = (accuracy(recognizers[a], photos) for a in (False, True))
        print(f"| {max_angle:g} deg | {len(photos)} | {found} | {plain:.3f} | {aligned:.3f} |")


if __name__ == "__main__":
    main()
