"""Compute-device set-up for one job: a quiet TensorFlow import, CPU threads and, on a
multi-GPU machine, one GPU per job (so that parallel Snakemake jobs spread over the GPUs
instead of piling onto GPU 0)."""

from __future__ import annotations

import fcntl
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from kerascv_emotion.errors import ConfigError

log = logging.getLogger(__name__)

_held_lock: IO | None = None  # kept open for the life of the process
_POLL_S = 1.0  # seconds between looks for a free GPU when all are claimed


def claim_gpu(num_gpus: int, lock_dir: str | os.PathLike | None = None) -> int | None:
    """Claim a free GPU of ``num_gpus`` with an exclusive file lock (``gpuN.lock`` in ``lock_dir``,
    default ``$KERASCV_EMOTION_GPU_LOCKS`` or ``/tmp/kerascv_emotion_gpus``), held until the process
    exits, and make it the only visible one (``CUDA_VISIBLE_DEVICES``). The locks are taken in
    order without blocking, so jobs starting at the same instant get different GPUs; when every
    GPU is taken the job waits until one is free. Must run before TensorFlow is imported.

    Returns the GPU id, or None when ``num_gpus`` is 0 or ``CUDA_VISIBLE_DEVICES`` is already
    set (by the user, the workflow or a scheduler such as SLURM), which is then kept.
    """
    global _held_lock
    if num_gpus <= 0 or "CUDA_VISIBLE_DEVICES" in os.environ:
        return None
    folder = Path(lock_dir or os.environ.get("KERASCV_EMOTION_GPU_LOCKS", Path(tempfile.gettempdir()) / "kerascv_emotion_gpus"))
    folder.mkdir(parents=True, exist_ok=True)
    waiting = False
    while True:
        for gpu in range(num_gpus):
            handle = open(folder / f"gpu{gpu}.lock", "w")  # noqa: SIM115 - held until exit
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            _held_lock = handle
            os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
            log.info("using GPU %d of %d", gpu, num_gpus)
            return gpu
        if not waiting:
            log.warning("all %d GPUs are claimed by other jobs (locks in %s); waiting for one", num_gpus, folder)
            waiting = True
        time.sleep(_POLL_S)


def device_record() -> dict[str, Any]:
    """The devices this process computes on, for a run's ``config.json``: ``CUDA_VISIBLE_DEVICES``
    as claimed or inherited (None: unset) and the GPUs TensorFlow sees."""
    import tensorflow as tf

    return {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "gpus": [gpu.name for gpu in tf.config.list_physical_devices("GPU")]}


def library_versions() -> dict[str, str]:
    """Versions of Python and of every library that shapes a result, for a run's ``config.json``."""
    import albumentations
    import keras
    import matplotlib
    import numpy as np
    import sklearn
    import tensorflow as tf

    from kerascv_emotion.version import __version__

    return {
        "kerascv_emotion": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "albumentations": albumentations.__version__,
        "scikit-learn": sklearn.__version__,
        "matplotlib": matplotlib.__version__,
    }


def import_tensorflow(verbose: bool = False) -> None:
    """Import TensorFlow and Keras. Unless ``verbose``, their start-up lines (oneDNN notice,
    "Could not find cuda drivers", absl's preamble), which the C++ runtime writes to file
    descriptor 2 whatever ``TF_CPP_MIN_LOG_LEVEL`` says, go to ``/dev/null`` during the import,
    and later C++ log lines below errors are off (``TF_CPP_MIN_LOG_LEVEL=3`` unless set; TensorFlow
    reads it once, so the variable is restored afterwards and child processes do not inherit it).
    A no-op once TensorFlow is imported."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" in sys.modules:
        return
    if verbose:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
        return
    user_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = user_level or "3"
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        if user_level is None:
            del os.environ["TF_CPP_MIN_LOG_LEVEL"]


def set_cpu_threads(threads: int) -> None:
    """Limit TensorFlow to ``threads`` intra-op threads (0 keeps TensorFlow's default: all cores)."""
    if threads < 0:
        raise ConfigError(f"threads={threads}: give a number of CPU threads, or 0 for all cores")
    if threads == 0:
        return
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
