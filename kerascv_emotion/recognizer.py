"""``EmotionRecognizer``: a trained model (a run folder or a preset) with face detection, for
photos given as paths, PIL images or arrays, through the same prediction path as ``predict``
(:func:`~kerascv_emotion.predict.predict_frames`).

    >>> from kerascv_emotion import EmotionRecognizer
    >>> recognizer = EmotionRecognizer.from_preset()            # or .from_run("runs/vgg")
    >>> recognizer.predict("photo.jpg")                        # one record per face
    [{'box': (x, y, w, h), 'landmarks': ((x, y), ...), 'score': 0.93, 'label': 'happy',
      'probability': 0.81, 'probabilities': {'anger': 0.02, ...}}]
    >>> recognizer.predict_many(["a.jpg", "photos/"])          # batched across files
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from kerascv_emotion.errors import BadImageError, ConfigError
from kerascv_emotion.face_detection import DEFAULT_DETECTOR, DEFAULT_MARGIN
from kerascv_emotion.predict import DEFAULT_EVERY
from kerascv_emotion.presets import CARD, DEFAULT_PRESET, preset_detects_faces, preset_dir
from kerascv_emotion.runs import MODEL

log = logging.getLogger(__name__)


def to_image(x: Any) -> Image.Image:
    """A PIL image (turned upright by its EXIF orientation, as files are) or a uint8 array
    ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA -> a PIL image."""
    if isinstance(x, Image.Image):
        return ImageOps.exif_transpose(x)
    array = np.asarray(x)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ConfigError(f"an image array must be uint8 (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA; "
                          f"got {array.dtype} {array.shape}")
    return Image.fromarray(array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array)


class EmotionRecognizer:
    """A loaded model and how faces are found for it.

    ``folder``: a finished run or a preset (``config.json`` + ``model.keras``). ``detect_faces``:
    classify every face found by ``detector``, each box grown by ``margin`` (``align`` levels the
    eyes first), or the whole image (default: as a preset's card says; a run: faces). ``batch_size`` crops per model call;
    a video's frames are predicted every ``every`` seconds. Probabilities are divided by the
    folder's temperature (``calibration.json``) unless ``calibrate`` is off.
    """

    def __init__(self, folder: str | os.PathLike, detect_faces: bool | None = None, detector: str = DEFAULT_DETECTOR,
                 margin: float = DEFAULT_MARGIN, align: bool = False, batch_size: int = 32,
                 max_pixels: int | None = None, every: float = DEFAULT_EVERY, calibrate: bool = True) -> None:
        from kerascv_emotion.predict import check_face_options
        from kerascv_emotion.temperature import load_run_model

        self.folder = Path(folder)
        if detect_faces is None:
            detect_faces = preset_detects_faces(self.folder) if (self.folder / CARD).is_file() else True
        check_face_options(detect_faces, detector, align)
        self.config, self.model, self.temperature = load_run_model(self.folder, calibrate)
        self.options: dict[str, Any] = {"detect_faces": detect_faces, "detector": detector, "margin": margin,
                                        "align": align, "batch_size": batch_size,
                                        "source": str(self.folder / MODEL)}
        self.max_pixels = max_pixels or self.config.get("max_pixels")
        self.every = every

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, **options: Any) -> EmotionRecognizer:
        """The model of a finished run folder; ``options`` as for the class."""
        return cls(run_dir, **options)

    @classmethod
    def from_preset(cls, name: str = DEFAULT_PRESET, **options: Any) -> EmotionRecognizer:
        """A bundled preset (:mod:`kerascv_emotion.presets`); ``options`` as for the class."""
        return cls(preset_dir(name), **options)

    @property
    def classes(self) -> list[str]:
        """The model's output names, in output order."""
        return list(self.config["output_names"])

    def predict(self, x: str | os.PathLike | Image.Image | np.ndarray) -> list[dict[str, Any]]:
        """One record per face in ``x`` (a path, a PIL image or a uint8 array, :func:`to_image`),
        left to right (:meth:`~kerascv_emotion.predict.Predictions.records`); ``[]`` without a
        face. A video's path gives the records of its frames every ``every`` seconds, each with
        its ``time``. A file that cannot be decoded raises
        :class:`~kerascv_emotion.errors.BadImageError`."""
        from kerascv_emotion.data.images import open_image
        from kerascv_emotion.predict import is_video, predict_frames, video_frames

        video = False
        if isinstance(x, str | os.PathLike):
            name, video = os.fspath(x), is_video(x)
            frames = video_frames(name, self.every) if video else [(name, None, open_image(name, self.max_pixels))]
        else:
            name, frames = "<image>", [("<image>", None, to_image(x))]
        result = predict_frames(self.model, self.config, frames, 1, progress=False, times=video, **self.options)
        if result.skipped:
            raise BadImageError(name, result.skipped[0]["reason"])
        return result.records().get(name, [])

    def predict_many(self, inputs: Sequence[str | os.PathLike], progress: bool = False) -> dict[str, list[dict[str, Any]]]:
        """Records by file for image and video files, folders (recursive) or glob patterns
        ``inputs`` (:func:`~kerascv_emotion.predict.collect_inputs`), faces of several files
        batched into each model call; in file order (a video's records carry ``time``). Files
        that cannot be decoded are left out, with a warning."""
        from kerascv_emotion.predict import collect_inputs, is_video, predict_frames, read_frames

        files, skipped = collect_inputs(inputs)
        result = predict_frames(self.model, self.config, read_frames(files, self.max_pixels, self.every), len(files),
                                skipped=skipped, progress=progress, times=any(map(is_video, files)), **self.options)
        for item in result.skipped:
            log.warning("skipped %s: %s", item["path"], item["reason"])
        records = result.records()
        return {path: records[path] for path in files if path in records}
