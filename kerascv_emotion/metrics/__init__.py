"""Evaluation metrics: pure functions over NumPy arrays, scikit-learn underneath.

Classification (:func:`classification_metrics`) and valence/arousal regression
(:func:`regression_metrics`) return the "Metrics JSON" dicts of ``docs/architecture.md``
(``kerascv_emotion.reporting.tables`` lays them out as tables); :func:`bootstrap_intervals` and
:func:`bootstrap_regression_intervals` give seeded percentile confidence intervals.

Conventions:

* ``y_true`` is integer label ids ``(N,)`` or one-hot ``(N, K)``; ``y_prob`` is class
  probabilities ``(N, K)`` (rows sum to 1), or ``(N, 1)`` / ``(N,)`` sigmoid outputs
  (probability of the second class) when there are 2 classes. Logits raise
  :class:`MetricInputError` unless ``from_logits=True`` (softmax, or sigmoid for one column).
* Predicted class = arg-max of the probabilities.
* Precision, recall and F1 follow scikit-learn's ``zero_division`` convention (default 0
  when a denominator is 0, as in ``classification_report``); other undefined numbers
  (AUCs for a class absent from ``y_true``, specificity when every sample is of the class,
  correlations of constant series) are NaN, each with a line in ``notes`` saying why.
* Every number is a Python ``float`` (counts are ``int``), so the dict is JSON-ready
  through :func:`kerascv_emotion.io.write_json` (NaN -> ``null``).

Modules: ``arrays`` (input validation, :class:`MetricInputError`), ``classification``,
``calibration`` (ECE, MCE, Brier, NLL, reliability diagram, temperature scaling),
``regression`` and ``bootstrap`` (confidence intervals).
"""

from __future__ import annotations

from kerascv_emotion.metrics.arrays import MetricInputError
from kerascv_emotion.metrics.bootstrap import (
    bootstrap_intervals,
    bootstrap_regression_intervals,
    weighted_roc_auc,
)
from kerascv_emotion.metrics.calibration import (
    DEFAULT_BINS,
    apply_temperature,
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    fit_temperature,
    max_calibration_error,
    negative_log_likelihood,
    reliability_diagram,
)
from kerascv_emotion.metrics.classification import classification_metrics
from kerascv_emotion.metrics.regression import (
    concordance_correlation,
    regression_metrics,
    sign_agreement,
)

__all__ = [
    "DEFAULT_BINS",
    "MetricInputError",
    "apply_temperature",
    "bootstrap_intervals",
    "bootstrap_regression_intervals",
    "brier_score",
    "calibration_metrics",
    "classification_metrics",
    "concordance_correlation",
    "expected_calibration_error",
    "fit_temperature",
    "max_calibration_error",
    "negative_log_likelihood",
    "regression_metrics",
    "reliability_diagram",
    "sign_agreement",
    "weighted_roc_auc",
]
