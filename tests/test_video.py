"""Videos among predict's inputs: one row per sampled frame and face with the frame's time,
an annotated copy, and a file that is no video; on a short generated MJPG clip."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kerascv_emotion.cli import main
from kerascv_emotion.predict import video_frames

DATA = Path(__file__).parent / "data"
FPS = 10


def _photo(name: str) -> np.ndarray:
    """A test photo on a black 256x256 canvas, RGB."""
    canvas = Image.new("RGB", (256, 256))
    with Image.open(DATA / name) as img:
        canvas.paste(img.convert("RGB"), (0, 0))
    return np.asarray(canvas)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 10 fps: the astronaut for 1 s, a cup for 1 s, the astronaut again."""
    import cv2

    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (256, 256))
    for name in ("astronaut.jpg", "coffee.jpg", "astronaut.jpg"):
        frame = np.ascontiguousarray(_photo(name)[:, :, ::-1])
        for _ in range(FPS):
            writer.write(frame)
    writer.release()
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_frames_are_sampled_every_so_many_seconds(clip: Path) -> None:
    assert [t for _, t, _ in video_frames(str(clip), every=0.5)] == pytest.approx([0, 0.5, 1, 1.5, 2, 2.5])
    assert [t for _, t, _ in video_frames(str(clip), every=1.25)] == pytest.approx([0, 1.3, 2.5])
    every_frame = list(video_frames(str(clip), every=1.0, sampled_only=False))
    assert len(every_frame) == 3 * FPS and [t for _, t, _ in every_frame if t is not None] == pytest.approx([0, 1, 2])
    assert every_frame[0][2].size == (256, 256) and every_frame[0][2].mode == "RGB"


def test_a_video_gives_a_row_per_sampled_frame_and_face(tiny_run: Path, clip: Path, tmp_path: Path) -> None:
    fake = tmp_path / "broken.mp4"
    fake.write_bytes(b"not a video at all")
    photo = str(DATA / "astronaut.jpg")
    result = CliRunner().invoke(main, ["predict", str(tiny_run), str(clip), photo, str(fake), "--detect-faces",
                                       "--every", "0.5", "--annotate", str(tmp_path / "ann"),
                                       "--out", str(tmp_path / "p.csv")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"skipped {fake}: cannot be read as a video" in result.output
    rows = _rows(tmp_path / "p.csv")
    assert [(Path(r["path"]).name, r["time_s"] and float(r["time_s"])) for r in rows] == [
        ("clip.avi", 0.0), ("clip.avi", 0.5), ("clip.avi", 2.0), ("clip.avi", 2.5), ("astronaut.jpg", "")]
    assert list(rows[0])[:3] == ["path", "time_s", "face"]
    assert abs(int(rows[0]["face_x"]) - int(rows[-1]["face_x"])) <= 4  # MJPG changes pixels a little

    import cv2

    capture = cv2.VideoCapture(str(tmp_path / "ann" / "clip.avi"))
    frames = []
    while (frame := capture.read())[0]:
        frames.append(frame[1][:, :, ::-1])
    capture.release()
    assert len(frames) == 3 * FPS and (tmp_path / "ann" / "astronaut.png").is_file()
    x, y = int(rows[1]["face_x"]), int(rows[1]["face_y"])

    def red(frame: np.ndarray) -> bool:  # the box's left edge drawn in (255, 64, 64)
        edge = frame[y + 5:y + 20, x:x + 2].astype(int)
        return bool(((edge[..., 0] > 200) & (edge[..., 1] < 120)).mean() > 0.8)

    assert [red(frames[i]) for i in (0, 7, 12, 18, 21, 29)] == [True, True, False, False, True, True]


def test_the_recognizer_reads_videos_too(tiny_run: Path, clip: Path, tmp_path: Path) -> None:
    from kerascv_emotion import EmotionRecognizer
    from kerascv_emotion.errors import BadImageError

    recognizer = EmotionRecognizer.from_run(tiny_run, every=1.0)
    records = recognizer.predict(clip)
    assert [r["time"] for r in records] == [0.0, 2.0] and all(len(r["landmarks"]) == 5 for r in records)
    many = recognizer.predict_many([clip, DATA / "astronaut.jpg"])
    assert [[r.get("time") for r in v] for v in many.values()] == [[0.0, 2.0], [None]]
    fake = tmp_path / "broken.mp4"
    fake.write_bytes(b"not a video at all")
    with pytest.raises(BadImageError, match="cannot be read as a video"):
        recognizer.predict(fake)


def test_a_file_that_is_no_video_gets_one_line_not_ffmpegs_too(tmp_path: Path) -> None:
    """FFmpeg writes its own error lines to the process's stderr (not Python's), so this runs in
    a fresh process: OpenCV reads its FFmpeg log level at the first video it opens."""
    import os
    import subprocess
    import sys

    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"not a video at all")
    code = ("import sys; from kerascv_emotion.predict import video_frames; "
            "print(repr(list(video_frames(sys.argv[1]))[0][2]))")
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    done = subprocess.run([sys.executable, "-c", code, str(fake)], capture_output=True, text=True, env=env,
                          timeout=120, check=True)
    assert "cannot be read as a video" in done.stdout and done.stderr == "", done.stderr
