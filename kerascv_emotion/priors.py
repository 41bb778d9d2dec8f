"""Prior correction of a classifier trained with "balanced" class weights (post-hoc logit
adjustment, Menon et al. 2021, "Long-tail learning via logit adjustment").

Balanced weights make every class weigh the same in the loss, so the network learns
``p(y | x)`` for a uniform class mix: it over-predicts the rare classes. Adding
``log(prior[y])`` (the training split's class frequencies) to the output layer's bias turns
its softmax into ``p(y | x) * prior[y]`` renormalised, the posterior for the training mix,
whose arg-max is the accuracy-optimal decision. The shift is baked into ``model.keras``, so
``evaluate``, ``predict``, ``export``, ``ensemble`` and distillation all carry it; the
temperature (:mod:`kerascv_emotion.temperature`) is fitted afterwards.

Applied by ``train --prior-correction`` at the end of training, or to a finished run by
:func:`correct_run_prior` (``kerascv-emotion correct-prior RUN --out DIR``), which writes a
new run folder and leaves the original untouched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from kerascv_emotion import runs
from kerascv_emotion.errors import DataError

CLASS_PRIOR_KEY = "class_prior"  # config.json: the training frequencies added (as logs) to the output bias
CLASS_MIX_KEY = "class_mix"  # an ensemble's config.json: the class mix its members' probabilities follow
BALANCED, TRAINING, MIXED = "balanced", "training", "mixed"  # class mixes (see class_mix)


def class_prior(label_ids: np.ndarray, num_classes: int) -> np.ndarray:
    """Training frequencies ``(num_classes,)`` of the label ids ``(N,)``, summing to 1; a class
    absent from training counts as one image (its balanced weight is 1, and log 0 is no bias)."""
    counts = np.bincount(np.asarray(label_ids, dtype=np.int64), minlength=num_classes)[:num_classes]
    counts = np.maximum(counts, 1).astype(np.float64)
    return counts / counts.sum()


def shift_output_bias(model: Any, prior: np.ndarray) -> None:
    """Add ``log(prior)`` ``(K,)`` to the bias of ``model``'s softmax output layer (named
    :data:`~kerascv_emotion.models.blocks.PREDICTIONS`), in place: the model's probabilities
    become ``p * prior`` renormalised. A model without such a layer (an ensemble, a regressor,
    a one-unit sigmoid) raises :class:`DataError`."""
    from kerascv_emotion.models.blocks import PREDICTIONS

    try:
        layer = model.get_layer(PREDICTIONS)
    except ValueError:
        layer = None
    activation = getattr(getattr(layer, "activation", None), "__name__", None)
    if layer is None or activation != "softmax" or not getattr(layer, "use_bias", False) \
            or int(layer.units) != len(prior):
        raise DataError(f"model {model.name!r} has no {len(prior)}-unit softmax Dense layer {PREDICTIONS!r} "
                        "with a bias; prior correction applies to a single trained classifier (correct an "
                        "ensemble's members, then ensemble them)")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, (bias + np.log(prior)).astype(bias.dtype)])


def check_correctable(config: dict[str, Any], run_dir: str | os.PathLike) -> None:
    """A one-line :class:`DataError` unless ``config`` (a run's ``config.json``) is a classifier
    trained with balanced class weights and not corrected yet."""
    if config.get("task", "classification") != "classification" or runs.MEMBERS_KEY in config:
        raise DataError(f"{run_dir} is not a single trained classifier; prior correction applies to one "
                        "(correct an ensemble's members, then ensemble them)")
    if config.get(CLASS_PRIOR_KEY) is not None:
        raise DataError(f"{run_dir} is already prior-corrected ({CLASS_PRIOR_KEY} in its config.json)")
    if config.get("class_weight") != "balanced":
        raise DataError(f"{run_dir} was trained with class_weight={config.get('class_weight')!r}; its outputs "
                        "already follow the training class mix, so there is no prior to correct")


def correct_run_prior(run_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write the finished run ``run_dir`` (a classifier trained with balanced class weights)
    with its output bias shifted by the log training frequencies into the new run folder
    ``out_dir`` (``config.json`` adds ``prior_correction: true``, :data:`CLASS_PRIOR_KEY` and
    ``corrected_from``; its history is copied), then fit the new run's temperature on the
    validation split. Returns ``out_dir``."""
    from kerascv_emotion.temperature import calibrate_run

    source, out = Path(run_dir).resolve(), Path(out_dir)
    config = runs.read_config(source)
    check_correctable(config, source)
    if out.resolve() == source:
        raise DataError(f"--out {out} is the run itself; give a new folder (the original stays as it is)")
    train = runs.load_run_split(config, "train")
    prior = class_prior(train.label_ids, len(config["output_names"]))
    model = runs.load_model(source / runs.MODEL)
    shift_output_bias(model, prior)
    corrected = {**config, "prior_correction": True, CLASS_PRIOR_KEY: prior.tolist(), "corrected_from": str(source)}
    with runs.claim(out, {"corrected_from": str(source)}, restart=True) as work:
        runs.finish_untrained(out, work, corrected, config["output_names"], model.save)
    for name in ("history.csv", "metrics_log.jsonl", "skipped_images.json"):  # the source's training record
        if (source / name).is_file():
            shutil.copyfile(source / name, out / name)
    calibrate_run(out)
    return out


def class_mix(run_dir: str | os.PathLike) -> str:
    """The class mix a finished classifier's probabilities follow: :data:`BALANCED` (trained with
    balanced class weights, uncorrected) or :data:`TRAINING` (the training split's: prior-corrected,
    or trained unweighted); an ensemble's is its members' (:data:`MIXED` when they differ), as
    ``ensemble`` records it in :data:`CLASS_MIX_KEY` (read from the members' folders for an
    ensemble written before that)."""
    config = runs.read_config(run_dir)
    if runs.MEMBERS_KEY in config:
        return config.get(CLASS_MIX_KEY) or members_class_mix([member["run"] for member in config[runs.MEMBERS_KEY]])
    return loss_class_mix(config.get("class_weight")) if config.get(CLASS_PRIOR_KEY) is None else TRAINING


def loss_class_mix(class_weight: Any) -> str:
    """The class mix a label loss weighted by ``class_weight`` (a run's setting) teaches its
    probabilities: :data:`BALANCED` for ``"balanced"``, else :data:`TRAINING`."""
    return BALANCED if class_weight == "balanced" else TRAINING


def members_class_mix(run_dirs: list[str | os.PathLike]) -> str:
    """The common :func:`class_mix` of the runs ``run_dirs``, or :data:`MIXED`."""
    mixes = {class_mix(run_dir) for run_dir in run_dirs}
    return mixes.pop() if len(mixes) == 1 else MIXED


def mix_shift(source: str, target: str, prior: np.ndarray, run_dir: str | os.PathLike) -> np.ndarray | None:
    """The log shift ``(K,)`` that moves probabilities for class mix ``source`` to ``target``
    (``softmax(log p + shift)``): ``-log(prior)`` from :data:`TRAINING` to :data:`BALANCED`,
    ``+log(prior)`` the other way, ``None`` when they agree; ``prior`` ``(K,)`` the training
    frequencies. A :data:`MIXED` source (``run_dir``'s) is a one-line :class:`DataError`."""
    if source == MIXED:
        raise DataError(f"{run_dir} averages prior-corrected (or unweighted) and balanced-weight members, so its "
                        "probabilities follow no single class mix; ensemble members of one kind")
    if source == target:
        return None
    return np.log(prior) * (1.0 if target == TRAINING else -1.0)
