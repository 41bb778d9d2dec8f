"""Knowledge distillation: a student network trained on a finished teacher run's soft targets
plus the labels (``kerascv-emotion distill``), through the training path of ``train`` (data
loader, class weights, callbacks, PerClassMetrics validation, run folder, resuming).

:class:`ProbabilityDistiller` is a ``keras.distillation.Distiller`` for this library's models,
whose outputs are probabilities, not logits: the soft-target term is Keras's
``LogitsDistillation`` (``temperature``² x KL of the softened distributions) on the
log-probabilities, whose softmax at temperature T is ``p^(1/T)`` renormalised; the label term
is the compiled loss with the loader's sample (class) weights, which Keras's ``Distiller``
would drop. The KL loss is passed as a ``KLDivergence`` instance: ``LogitsDistillation``
softens logits into distributions only for one (its default, the string ``"kl_divergence"``,
becomes a function that it applies to the raw logits: 0 for log-probabilities). The teacher
(any run, an ensemble too) sees the student's input, resized and converted to its own
(:func:`kerascv_emotion.ensemble.adapt_input`): every augmented batch (``soft_targets="online"``),
or each training image once, flip-averaged, before the first epoch (``"offline"``: the
targets ride in the batches beside the labels and are mixed with them, and an epoch costs
about what plain training does, whatever the teacher's size). The checkpoint and
``model.keras`` hold the student alone.

The soft targets follow the class mix the student's label loss learns (:mod:`kerascv_emotion.priors`):
a student with balanced class weights learns probabilities for a balanced mix, so a
prior-corrected (or unweighted) teacher's probabilities are divided by the training
frequencies first, and an uncorrected balanced-weight teacher's are multiplied by them for an
unweighted student; ``--prior-correction`` then corrects the student once.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kerascv_emotion import runs, training
from kerascv_emotion.data.index import read_index
from kerascv_emotion.errors import ConfigError, DataError
from kerascv_emotion.priors import class_mix, class_prior, loss_class_mix, mix_shift
from kerascv_emotion.settings import DistillSettings

_EPSILON = 1e-7  # probabilities are clipped to [eps, 1] before their log


def log_probabilities(probabilities: Any) -> Any:
    """``(N, K)`` probabilities -> ``(N, K)`` log-probabilities (a sigmoid's ``(N, 1)`` ->
    ``(N, 2)``, as ``[1 - p, p]``), usable as logits: their softmax is the distribution."""
    if probabilities.shape[-1] == 1:
        probabilities = keras.ops.concatenate([1.0 - probabilities, probabilities], axis=-1)
    return keras.ops.log(keras.ops.clip(probabilities, _EPSILON, 1.0))


class ProbabilityDistiller(keras.distillation.Distiller):
    """``alpha`` x the compiled label loss (sample-weighted) + (1 - ``alpha``) x the soft-target
    loss (``LogitsDistillation(temperature)`` on log-probabilities); ``teacher`` and ``student``
    output probabilities for the same input shape. The soft targets are the teacher's outputs
    for each batch, or, ``offline``, the teacher probabilities that every training ``y``
    ``(B, 2K)`` carries beside its labels (validation ``y`` holds the labels alone). Logs
    ``student_loss`` (labels), ``distillation_loss`` (soft targets) and ``total_loss`` per
    epoch beside ``loss``."""

    def __init__(self, teacher: keras.Model, student: keras.Model, temperature: float, alpha: float,
                 offline: bool = False) -> None:
        super().__init__(teacher=teacher, student=student,
                         distillation_losses=keras.distillation.LogitsDistillation(
                             temperature=temperature, loss=keras.losses.KLDivergence()),
                         student_loss_weight=alpha)
        self.label_loss: Any = None
        self.offline = offline

    def split_targets(self, y: Any, required: bool = False) -> tuple[Any, Any]:
        """``(labels, teacher probabilities or None)``: an ``offline`` distiller's training ``y``
        ``(B, 2K)`` carries both (:meth:`~kerascv_emotion.data.loader.ImageBatches.set_soft_targets`);
        any other ``y`` is the labels alone, which an offline distiller's training step
        (``required``) refuses with a one-line :class:`ConfigError`."""
        width = self.student.output_shape[-1]
        if self.offline and y is not None and y.shape[-1] == 2 * width:
            return y[..., :width], y[..., width:]
        if self.offline and required:
            raise ConfigError(f"an offline distiller's training targets must carry the teacher's probabilities "
                              f"beside the labels, (batch, {2 * width}); got {tuple(y.shape)}: call "
                              "ImageBatches.set_soft_targets on the training batches")
        return y, None

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        """The student's (read by :func:`kerascv_emotion.training.compile_model`)."""
        return self.student.output_shape

    def compile(self, optimizer: Any = "adam", loss: Any = None, metrics: Any = None, **kwargs: Any) -> None:
        self.label_loss = loss
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def soft_target_loss(self, x: Any, y_pred: Any, teacher_probabilities: Any = None) -> Any:
        """The soft-target term: ``temperature``² x mean KL(teacher || student) at ``temperature``;
        the teacher's probabilities ``(B, K)`` are ``teacher_probabilities`` when given, else its
        outputs for ``x``."""
        teacher = self.teacher(x, training=False) if teacher_probabilities is None else teacher_probabilities
        return self.distillation_losses[0].compute_loss(log_probabilities(teacher), log_probabilities(y_pred))

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
                     training: bool = True) -> Any:
        """``alpha`` x label loss + (1 - ``alpha``) x soft-target loss (+ the student's
        regularisation); an ``offline`` distiller's validation batches carry no soft targets, so
        its ``val_loss`` is the label loss alone."""
        if y_pred is None:
            y_pred = self(x, training=training)
        y, teacher_probabilities = self.split_targets(y, required=training)
        labels = self.label_loss(y, y_pred, sample_weight=sample_weight)
        if self.offline and teacher_probabilities is None:
            soft, total = None, labels
        else:
            soft = self.soft_target_loss(x, y_pred, teacher_probabilities)
            total = self.student_loss_weight * labels + (1.0 - self.student_loss_weight) * soft
        if self.losses:  # the student's regularisation losses, as Keras's own compute_loss adds them
            total = total + keras.ops.sum(self.losses)
        if training and soft is not None:
            self.student_loss_tracker.update_state(labels)
            self.distillation_loss_tracker.update_state(soft)
            self.total_loss_tracker.update_state(total)
        return total

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The compiled metrics against the labels (without an offline ``y``'s soft targets)."""
        return super().compute_metrics(x, self.split_targets(y)[0], y_pred, sample_weight)


def offline_soft_targets(teacher: keras.Model, images: np.ndarray, batch_size: int,
                         progress: bool = False, source: str | os.PathLike | None = None) -> np.ndarray:
    """The teacher's flip-averaged probabilities float32 ``(N, K)`` for uint8 ``images``
    ``(N, H, W, C)`` (a sigmoid's ``(N, 1)`` as ``[1 - p, p]``): the soft targets of
    ``--soft-targets offline``, one teacher pass per image and flip; ``progress``: a stderr
    progress line (:class:`~kerascv_emotion.data.cache.Progress`); ``source``: the teacher's
    model file, named by the one-line error when its outputs are not finite."""
    from kerascv_emotion.data.cache import Progress
    from kerascv_emotion.inference import predict_batches

    bar = Progress("teacher soft targets", len(images), progress)
    chunk = 32 * batch_size
    parts = []
    for start in range(0, len(images), chunk):
        parts.append(predict_batches(teacher, images[start:start + chunk], batch_size, tta="hflip", source=source))
        bar.update(start + len(parts[-1]))
    probabilities = np.concatenate(parts).astype(np.float32)
    if probabilities.shape[-1] == 1:
        probabilities = np.concatenate([1.0 - probabilities, probabilities], axis=-1)
    return probabilities


def teacher_for(teacher: keras.Model, input_shape: tuple[int, ...], log_shift: Any = None) -> keras.Model:
    """``teacher`` taking ``input_shape`` ``(H, W, C)`` images (resized and converted to its own),
    its probabilities ``p`` ``(N, K)`` moved to ``softmax(log p + log_shift)`` when a ``(K,)``
    ``log_shift`` is given (:func:`kerascv_emotion.priors.mix_shift`)."""
    if tuple(teacher.input_shape[1:]) == tuple(input_shape) and log_shift is None:
        return teacher
    from kerascv_emotion.ensemble import adapt_input

    inputs = keras.Input(shape=input_shape, dtype="float32", name="image")
    outputs = teacher(adapt_input(inputs, teacher.input_shape[1:], "teacher"))
    if log_shift is not None:
        shift = keras.ops.convert_to_tensor(np.asarray(log_shift, dtype="float32"))
        outputs = keras.ops.softmax(log_probabilities(outputs) + shift, axis=-1)
    return keras.Model(inputs, outputs, name="teacher")


def distill(settings: DistillSettings, out_dir: str | os.PathLike, verbose: int = 2, restart: bool = False,
            refresh_cache: bool = False) -> Path:
    """Train ``settings.train.arch`` into the run folder ``out_dir`` on the soft targets of the
    run ``settings.teacher`` plus the labels of ``settings.train.index`` (which must have the
    teacher's classes); as :func:`kerascv_emotion.training.train` otherwise (resumable, the best
    epoch by ``monitor`` kept). ``config.json`` adds ``distilled_from``, ``temperature``,
    ``alpha``, ``soft_targets`` and ``teacher_class_mix`` (the teacher's :func:`~kerascv_emotion.priors.class_mix`,
    moved to the student's). Returns the run folder."""
    from kerascv_emotion.models import build_model, check_model_options

    settings.check()
    check_model_options(settings.train.arch, settings.train.arch_kwargs)
    teacher_dir = Path(settings.teacher).resolve()
    teacher_config = runs.read_config(teacher_dir)
    if teacher_config.get("task", "classification") != "classification":
        raise DataError(f"teacher {teacher_dir} is a {teacher_config['task']} run; distill from a classification run")
    student_settings = training.resolved(settings.train)
    runs.check_index_classes(student_settings.index, read_index(student_settings.index).class_names, teacher_dir,
                             teacher_config, "teacher")
    teacher_mix = class_mix(teacher_dir)
    record = {"distilled_from": str(teacher_dir), "temperature": settings.temperature, "alpha": settings.alpha,
              "soft_targets": settings.soft_targets, "teacher_class_mix": teacher_mix}
    run_dir = Path(out_dir)
    with runs.claim(run_dir, {**dataclasses.asdict(student_settings), **record}, restart=restart) as work:
        training.seed_everything(student_settings.seed, student_settings.deterministic)
        data = training.load_data(student_settings, refresh_cache=refresh_cache)
        size, epochs = student_settings.image_size, student_settings.epochs
        shape = (size, size, student_settings.channels)
        student = build_model(student_settings.arch, input_shape=shape, num_classes=len(data.output_names),
                              head=student_settings.task, **student_settings.arch_kwargs)
        prior = class_prior(data.train.cached.label_ids, len(data.output_names))
        teacher = teacher_for(runs.load_model(teacher_dir / runs.MODEL), shape,
                              mix_shift(teacher_mix, loss_class_mix(student_settings.class_weight), prior, teacher_dir))
        offline = settings.soft_targets == "offline"
        if offline and not training.phase_done_file(work, "train").is_file():  # a finished phase needs none
            data.train.set_soft_targets(offline_soft_targets(teacher, data.train.cached.images,
                                                             student_settings.batch_size, progress=verbose > 0,
                                                             source=teacher_dir / runs.MODEL))
        model = ProbabilityDistiller(teacher, student, settings.temperature, settings.alpha, offline=offline)
        rate = student_settings.learning_rate
        training.compile_model(model, student_settings,
                               training.make_optimizer(student_settings, rate, len(data.train), epochs))
        result = training.fit_phase(model, student_settings, data, work, "train", rate, 0, epochs, None, verbose)
        training.finish_run(run_dir, work, result.checkpoint, ["train"], student_settings, data, student,
                            phases=[{"name": "train", "first_epoch": 0, "epochs": epochs, "learning_rate": rate}],
                            **record)
    return run_dir
