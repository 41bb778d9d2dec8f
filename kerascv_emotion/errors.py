"""Exceptions that the CLI turns into one-line messages (never a deep traceback)."""

from __future__ import annotations


class KerasCVEmotionError(Exception):
    """Base class: a problem the user can fix; the message says what and where."""


class ConfigError(KerasCVEmotionError):
    """A setting (CLI option, config key, function argument) has a bad value."""


class DataError(KerasCVEmotionError):
    """A dataset, index or annotation file is missing or malformed."""


class BadImageError(DataError):
    """One image file cannot be decoded or used; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class RunFolderError(KerasCVEmotionError):
    """A run folder is in use by another process, or holds a run that cannot be resumed."""


class TrainingDiverged(KerasCVEmotionError):
    """The loss became NaN or infinite: the run stops, keeps no model, and cannot be resumed
    (its state would diverge again); the message names the epoch and the rate to lower."""
