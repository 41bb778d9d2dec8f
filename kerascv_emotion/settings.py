"""The settings of ``train`` and ``tune``: the one home of each default and its check (no
TensorFlow import). The CLI takes its option defaults from :data:`TRAIN_DEFAULTS` and
:data:`TUNE_DEFAULTS`; ``tests/test_workflow.py`` checks the CLI and the workflow schema
against them, so a new setting is written here once."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from kerascv_emotion.batchnorm_statistics import DEFAULT_IMAGES as PRECISE_BN_IMAGES
from kerascv_emotion.errors import ConfigError
from kerascv_emotion.tasks import TASKS

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")
SOFT_TARGETS = ("online", "offline")
"""How a student gets its teacher's soft targets (:class:`DistillSettings`)."""


@dataclass
class TrainSettings:
    """Every setting of one training run; stored in ``config.json``."""

    arch: str
    index: str
    task: str = "classification"
    image_size: int = 64
    channels: int = 3
    epochs: int = 10
    batch_size: int = 32
    augment: str | dict | None = "paper_face"
    seed: int = 0
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    ema_momentum: float = 0.0  # weight EMA per step (Keras's optimizer EMA); 0: off, e.g. 0.999
    mixup_alpha: float = 0.0  # mixup's Beta(alpha, alpha) per batch; 0: off
    cutmix_alpha: float = 0.0  # cutmix's Beta(alpha, alpha) per batch; 0: off (both on: one per batch)
    class_weight: str | None = "balanced"
    prior_correction: bool = False  # balanced weights only: bake log(train class frequencies) into the output bias
    monitor: str | None = None
    patience: int | None = None
    reduce_lr_patience: int | None = None
    precise_bn_images: int = PRECISE_BN_IMAGES
    on_bad_image: str = "skip"
    max_pixels: int | None = None  # decoder's pixel limit (None: Pillow's, about 89 megapixels)
    workers: int = 1
    cache_dir: str | None = None
    tensorboard: bool = False
    mixed_precision: bool = False
    deterministic: bool = False
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise :class:`ConfigError` (one line, naming the setting) for a value that cannot train."""
        _check_choice("task", self.task, TASKS)
        _check_choice("on_bad_image", self.on_bad_image, ("skip", "fail"))
        _check_choice("class_weight", self.class_weight, ("balanced", None))
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.prior_correction and (self.task != "classification" or self.class_weight != "balanced"):
            raise ConfigError("prior_correction needs a classification task trained with class_weight='balanced' "
                              "(without class weights the outputs already follow the training class mix)")
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.epochs < 1 or self.batch_size < 1 or self.image_size < 8:
            raise ConfigError("epochs and batch_size must be >= 1 and image_size >= 8")
        _check_rate("learning_rate", self.learning_rate)
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay={self.weight_decay}: give 0 or a finite positive decay")
        if not 0 <= self.ema_momentum < 1:
            raise ConfigError(f"ema_momentum={self.ema_momentum}: give 0 (off) or a value in (0, 1), e.g. 0.999")
        for name in ("mixup_alpha", "cutmix_alpha"):
            value = getattr(self, name)
            if not 0 <= value < float("inf"):
                raise ConfigError(f"{name}={value}: give 0 (off) or a positive Beta parameter, e.g. 0.2 / 1.0")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing={self.label_smoothing}: give a value in [0, 1)")
        if self.label_smoothing and self.task != "classification":
            raise ConfigError("label_smoothing applies to classification only")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(f"warmup_epochs={self.warmup_epochs}: give 0 .. epochs-1 ({self.epochs - 1})")
        if self.warmup_epochs and self.lr_schedule == "constant":
            raise ConfigError("warmup_epochs needs lr_schedule='cosine'")
        if self.lr_schedule != "constant" and self.reduce_lr_patience:
            raise ConfigError("reduce_lr_patience cannot be combined with lr_schedule="
                              f"{self.lr_schedule!r}: the schedule already sets the learning rate")
        if self.precise_bn_images == 1 or self.precise_bn_images < 0:
            raise ConfigError(f"precise_bn_images={self.precise_bn_images}: give 0 (off) or >= 2 images")


# TrainSettings fields that tune takes from the saved model and its phases, not from options
FROM_MODEL = ("arch", "image_size", "channels", "epochs", "learning_rate", "arch_kwargs")


@dataclass
class TuneSettings:
    """Two-phase fine-tuning of a saved ``model`` (phase 1 the head, phase 2 unfrozen at a low
    rate). ``train`` holds every other setting; tune replaces its :data:`FROM_MODEL` fields
    (and ``task`` unless ``task`` is given) with the model's and the phases'."""

    model: str
    train: TrainSettings
    task: str | None = None
    head_epochs: int = 3
    finetune_epochs: int = 3
    head_learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-4
    unfreeze_blocks: int | None = None

    @classmethod
    def create(cls, model: str, index: str, **options: Any) -> TuneSettings:
        """Settings from flat keyword options: this class's own fields and TrainSettings's
        (less :data:`FROM_MODEL`); an unknown key is a :class:`ConfigError`."""
        own = {f.name for f in fields(cls)} - {"model", "train"}
        allowed = own | set(TRAIN_DEFAULTS) - set(FROM_MODEL)
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ConfigError(f"unknown tune setting(s) {unknown}; known: {sorted(allowed)}")
        train = TrainSettings(arch="", index=index, **{k: v for k, v in options.items() if k not in own})
        return cls(model=model, train=train, **{k: v for k, v in options.items() if k in own})

    def check(self) -> None:
        """Raise :class:`ConfigError` (one line) for phase settings that cannot train."""
        if self.head_epochs < 0 or self.finetune_epochs < 0 or self.head_epochs + self.finetune_epochs < 1:
            raise ConfigError("tune needs head_epochs and finetune_epochs >= 0, at least one > 0")
        _check_rate("head_learning_rate", self.head_learning_rate)
        _check_rate("finetune_learning_rate", self.finetune_learning_rate)

    def phase_settings(self, arch: str, task: str, image_size: int, channels: int) -> TrainSettings:
        """The TrainSettings both phases run with (``epochs`` their sum, ``learning_rate`` the
        head's), checked."""
        self.check()
        settings = replace(self.train, arch=arch, task=task, image_size=image_size, channels=channels,
                           epochs=self.head_epochs + self.finetune_epochs, learning_rate=self.head_learning_rate)
        settings.check()
        return settings


@dataclass
class DistillSettings:
    """A student trained on a finished ``teacher`` run's soft targets plus the labels
    (:mod:`kerascv_emotion.distillation`); ``train`` holds the student's settings. The loss is
    ``alpha`` x the label loss + (1 - ``alpha``) x ``temperature``² x KL(teacher || student),
    both distributions softened by ``temperature``."""

    teacher: str
    train: TrainSettings
    temperature: float = 4.0
    alpha: float = 0.5
    soft_targets: str = "online"
    """``"online"``: the teacher sees every augmented (and mixed) batch; ``"offline"``: its
    flip-averaged probabilities for each training image, computed once before the first epoch
    and mixed with the batch (one teacher pass per image instead of one per batch and epoch)."""

    def check(self) -> None:
        """Raise :class:`ConfigError` (one line, naming the setting) for a value that cannot train."""
        self.train.check()
        if not self.temperature > 0:
            raise ConfigError(f"temperature={self.temperature}: give a positive temperature")
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha={self.alpha}: give the label loss's weight in [0, 1]")
        if self.train.task != "classification":
            raise ConfigError("distillation applies to classification only")
        _check_choice("soft_targets", self.soft_targets, SOFT_TARGETS)


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


TRAIN_DEFAULTS: Mapping[str, Any] = _defaults(TrainSettings)
"""``{field: default}`` of every TrainSettings field with a plain default."""
TUNE_DEFAULTS: Mapping[str, Any] = _defaults(TuneSettings)
"""``{field: default}`` of TuneSettings's own fields."""
DISTILL_DEFAULTS: Mapping[str, Any] = _defaults(DistillSettings)
"""``{field: default}`` of DistillSettings's own fields."""


def _check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {list(choices)}")


def _check_rate(name: str, value: float) -> None:
    """A learning rate must be a finite number > 0 (``inf``/``nan`` would train a NaN model)."""
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}={value}: give a finite positive learning rate (e.g. 1e-3)")
