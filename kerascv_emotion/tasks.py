"""The two tasks, the regression outputs' names and the monitored metric's direction: the
one home of each (no TensorFlow import)."""

from __future__ import annotations

TASKS = ("classification", "regression")
REGRESSION_NAMES = ("valence", "arousal")  # the two outputs of a task="regression" model, in order
REGRESSION_MEASURES = ("rmse", "corr", "sagr", "ccc")  # per dimension and mean, in the reports' order
_LOWER_IS_BETTER = ("loss", "rmse", "mae", "error")


def default_monitor(task: str) -> str:
    """The metric that picks the best epoch unless one is given: macro F1 or mean CCC."""
    return "val_macro_f1" if task == "classification" else "val_ccc_mean"


def monitor_mode(name: str) -> str:
    """``"min"`` for a loss or an error (``loss``, ``rmse``, ``mae``, ``error`` in the name),
    else ``"max"``: the direction in which ``name`` improves."""
    lowered = name.lower()
    return "min" if any(word in lowered for word in _LOWER_IS_BETTER) else "max"
