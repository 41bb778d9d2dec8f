"""Two-phase fine-tuning ("tune and train") of a saved model into a run directory: the head
first, then the unfrozen network at a low rate. Resumable like :func:`~kerascv_emotion.training.train`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kerascv_emotion import runs
from kerascv_emotion.errors import ConfigError
from kerascv_emotion.settings import TuneSettings
from kerascv_emotion.training import (
    compile_model,
    finish_run,
    fit_phase,
    load_data,
    make_optimizer,
    resolved,
    seed_everything,
    stream_seed,
)


def _layer_names_after(model: Any, first: str) -> list[str]:
    names = [layer.name for layer in model.layers]
    if first not in names:
        raise ConfigError(f"model {model.name!r} has no layer {first!r}")
    return names[names.index(first):]


def set_trainable(model: Any, phase: str, unfreeze_blocks: int | None = None) -> dict[str, bool]:
    """Set ``layer.trainable`` for a tuning phase; returns ``{layer name: trainable}``.

    * ``phase="head"``: only the head (from the model's head start to ``predictions``)
      trains; the backbone is frozen.
    * ``phase="finetune"``: the head plus all backbone layers (``unfreeze_blocks=None``)
      or the last ``unfreeze_blocks`` conv blocks train. BatchNormalization layers stay
      frozen, which in Keras 3 also keeps them in inference mode (the transfer-learning
      guide's advice), so small fine-tuning batches do not wreck their statistics.
    """
    import keras

    from kerascv_emotion.models import backbone_blocks, head_start_layer

    head = set(_layer_names_after(model, head_start_layer(model)))
    if phase == "head":
        trainable = head
    elif phase == "finetune":
        if unfreeze_blocks is None:
            trainable = {layer.name for layer in model.layers}
        else:
            blocks = backbone_blocks(model)
            if unfreeze_blocks < 0 or unfreeze_blocks > len(blocks):
                raise ConfigError(f"unfreeze_blocks={unfreeze_blocks}: the model has {len(blocks)} blocks")
            chosen = blocks[len(blocks) - unfreeze_blocks:] if unfreeze_blocks else []
            trainable = head | {name for block in chosen for name in block}
    else:
        raise ConfigError(f"unknown tuning phase {phase!r}; use 'head' or 'finetune'")
    state: dict[str, bool] = {}
    for layer in model.layers:
        on = layer.name in trainable and not isinstance(layer, keras.layers.BatchNormalization)
        if phase == "head" and isinstance(layer, keras.layers.BatchNormalization) and layer.name in head:
            on = True  # a new head's own BN statistics must be learnt
        layer.trainable = on
        state[layer.name] = on
    return state



def _saved_task(model: Any, base_config: dict[str, Any]) -> str:
    """The task the saved model was trained for (its run's config, else its output layer)."""
    if "task" in base_config:
        return base_config["task"]
    linear = model.get_layer("predictions").activation.__name__ == "linear"
    return "regression" if model.output_shape[-1] == 2 and linear else "classification"


def tune(settings: TuneSettings, out_dir: str | os.PathLike, verbose: int = 2, restart: bool = False,
         refresh_cache: bool = False) -> Path:
    """Fine-tune a saved model (``settings.model``: a ``.keras`` file or a run directory).

    Phase ``head`` trains only the head (a new one when the task or class count changes)
    at ``head_learning_rate``; phase ``finetune`` unfreezes everything or the last
    ``unfreeze_blocks`` blocks at ``finetune_learning_rate`` with BatchNormalization in
    inference mode. Both phases go into one ``history.csv`` (``phase`` column), so the
    report's curves show the boundary. ``restart`` and ``refresh_cache`` as for ``train``.
    The batches and dropout noise are seeded from the seed and the source model
    (:func:`~kerascv_emotion.training.stream_seed`). Returns the run directory.
    """
    from kerascv_emotion.models import replace_predictions

    settings.check()
    source = Path(settings.model).resolve()
    base_config = runs.read_config(source) if source.is_dir() else {}
    model_file = source / runs.MODEL if source.is_dir() else source
    model = runs.load_model(model_file)
    _, height, _, channels = model.input_shape
    old_task = _saved_task(model, base_config)
    train_settings = resolved(settings.phase_settings(
        arch=base_config.get("arch", model.name), task=settings.task or old_task, image_size=height, channels=channels))
    state = {"tune": {k: v for k, v in vars(settings).items() if k != "train"} | {"model": str(source)},
             **vars(train_settings)}
    run_dir = Path(out_dir)
    with runs.claim(run_dir, state, restart=restart) as work:
        seed_everything(train_settings.seed, train_settings.deterministic)
        data = load_data(train_settings, stream_seed(train_settings.seed, model.weights), refresh_cache)
        num_outputs = len(data.output_names)
        new_head = train_settings.task != old_task or model.output_shape[-1] != num_outputs
        if new_head:
            model = replace_predictions(model, num_outputs, train_settings.task)
        phases: list[dict[str, Any]] = []
        checkpoint: Path | None = None
        best: float | None = None
        epoch = 0
        for phase, epochs, lr in (("head", settings.head_epochs, settings.head_learning_rate),
                                  ("finetune", settings.finetune_epochs, settings.finetune_learning_rate)):
            if epochs <= 0:
                continue
            trainable = set_trainable(model, phase, settings.unfreeze_blocks)
            if checkpoint is not None:  # continue from the best epoch so far, not the last one
                model.load_weights(checkpoint)
            compile_model(model, train_settings, make_optimizer(train_settings, lr, len(data.train), epochs))
            result = fit_phase(model, train_settings, data, work, phase, lr, epoch, epochs, best, verbose)
            checkpoint, best = result.checkpoint or checkpoint, result.best
            phases.append({"name": phase, "first_epoch": epoch, "epochs": epochs, "learning_rate": lr,
                           "trainable_layers": sum(trainable.values()),
                           "frozen_layers": len(trainable) - sum(trainable.values())})
            epoch += epochs
        finish_run(run_dir, work, checkpoint, [p["name"] for p in phases], train_settings, data, model,
                   phases=phases, tuned_from=str(source), new_head=new_head, stream_seed=data.stream_seed,
                   unfreeze_blocks=settings.unfreeze_blocks)
    return run_dir
