"""kerascv_emotion: Keras 3 CNNs for facial affect and chest X-rays, with per-class metrics,
albumentations augmentation, reports and a Snakemake workflow.

The public API is the names in ``__all__``, each with one home in :data:`_API`
(``name -> "module:attribute"``, or ``"module"`` for a namespace). They are imported on first
use (PEP 562), so ``import kerascv_emotion`` imports neither TensorFlow nor Keras, and the
data/reporting commands stay fast::

    import kerascv_emotion as kce

    settings = kce.TrainSettings(arch="vgg", index="data/faces/index.csv", epochs=10)
    run = kce.train(settings, "runs/vgg")
    kce.evaluate(run)                              # run/eval/test/metrics.json
    kce.export_run(run, "litert")
    kce.EmotionRecognizer.from_run(run).predict("photo.jpg")

Two functions take names that are not their modules' (a submodule imported later would
otherwise replace the function on the package): ``predict_files`` is
``kerascv_emotion.predict.predict``, ``ensemble_runs`` is ``kerascv_emotion.ensemble.ensemble``.
"""

from __future__ import annotations

import importlib
from typing import Any

from kerascv_emotion.version import __version__

_API: dict[str, str] = {
    # settings, training and the runs made from runs
    "TrainSettings": "kerascv_emotion.settings:TrainSettings",
    "TuneSettings": "kerascv_emotion.settings:TuneSettings",
    "DistillSettings": "kerascv_emotion.settings:DistillSettings",
    "train": "kerascv_emotion.training:train",
    "tune": "kerascv_emotion.finetune:tune",
    "distill": "kerascv_emotion.distillation:distill",
    "ensemble_runs": "kerascv_emotion.ensemble:ensemble",
    # evaluation, calibration, reports
    "evaluate": "kerascv_emotion.evaluation:evaluate",
    "calibrate_run": "kerascv_emotion.temperature:calibrate_run",
    "correct_run_prior": "kerascv_emotion.priors:correct_run_prior",
    "write_run_report": "kerascv_emotion.reporting:write_run_report",
    "write_comparison": "kerascv_emotion.reporting:write_comparison",
    "metrics": "kerascv_emotion.metrics",
    # deployment
    "predict_files": "kerascv_emotion.predict:predict",
    "EmotionRecognizer": "kerascv_emotion.recognizer:EmotionRecognizer",
    "find_faces": "kerascv_emotion.face_detection:find_faces",
    "GradCam": "kerascv_emotion.explain:GradCam",
    "export_run": "kerascv_emotion.export:export_run",
    "list_presets": "kerascv_emotion.presets:list_presets",
    "build_preset": "kerascv_emotion.presets:build_preset",
    # models
    "build_model": "kerascv_emotion.models:build_model",
    "available_models": "kerascv_emotion.models:available_models",
    "register_model": "kerascv_emotion.models:register_model",
    # callbacks
    "PerClassMetrics": "kerascv_emotion.callbacks:PerClassMetrics",
    "PreciseBatchNorm": "kerascv_emotion.callbacks:PreciseBatchNorm",
    "EMAWeights": "kerascv_emotion.callbacks:EMAWeights",
    "StopOnDivergence": "kerascv_emotion.callbacks:StopOnDivergence",
    "AtomicModelCheckpoint": "kerascv_emotion.callbacks:AtomicModelCheckpoint",
    "AtomicBackupAndRestore": "kerascv_emotion.callbacks:AtomicBackupAndRestore",
    "EpochSeededNoise": "kerascv_emotion.callbacks:EpochSeededNoise",
    # data
    "DatasetIndex": "kerascv_emotion.data.index:DatasetIndex",
    "read_index": "kerascv_emotion.data.index:read_index",
    "build_index": "kerascv_emotion.data.readers:build_index",
    "generate_faces": "kerascv_emotion.data.synthetic:generate_faces",
    "generate_xrays": "kerascv_emotion.data.synthetic:generate_xrays",
    # errors
    "KerasCVEmotionError": "kerascv_emotion.errors:KerasCVEmotionError",
    "ConfigError": "kerascv_emotion.errors:ConfigError",
    "DataError": "kerascv_emotion.errors:DataError",
}
"""Every public name -> its one home, ``"module:attribute"`` (``"module"``: the module itself)."""

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str) -> Any:
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'kerascv_emotion' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = importlib.import_module(module)
    if attribute:
        value = getattr(value, attribute)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
