"""Reports from a run's saved artefacts: matplotlib figures (Agg), Markdown tables and
self-contained HTML pages (``report.html`` per run, ``comparison.html`` across runs).

Light on purpose: numpy, matplotlib and scikit-learn only, never TensorFlow.
"""

from __future__ import annotations

from kerascv_emotion.reporting.artefacts import read_evaluation, read_run
from kerascv_emotion.reporting.calibration import (
    class_gallery_figure,
    confusion_gallery_figure,
    reliability_figure,
)
from kerascv_emotion.reporting.classification import (
    classification_report_figure,
    confusion_matrix_figure,
    per_class_bars_figure,
    precision_recall_figure,
    roc_figure,
)
from kerascv_emotion.reporting.comparison import (
    f1_heatmap_figure,
    grouped_bars_figure,
    write_comparison,
)
from kerascv_emotion.reporting.curves import per_class_over_epochs_figure, training_curves_figure
from kerascv_emotion.reporting.regression import (
    circumplex_figure,
    error_histogram_figure,
    regression_table_figure,
    va_scatter_figure,
)
from kerascv_emotion.reporting.run_report import write_run_report
from kerascv_emotion.reporting.tables import classification_markdown, regression_markdown

__all__ = [
    "circumplex_figure",
    "class_gallery_figure",
    "classification_markdown",
    "classification_report_figure",
    "confusion_gallery_figure",
    "confusion_matrix_figure",
    "error_histogram_figure",
    "f1_heatmap_figure",
    "grouped_bars_figure",
    "per_class_bars_figure",
    "per_class_over_epochs_figure",
    "precision_recall_figure",
    "read_evaluation",
    "read_run",
    "regression_markdown",
    "regression_table_figure",
    "reliability_figure",
    "roc_figure",
    "training_curves_figure",
    "va_scatter_figure",
    "write_comparison",
    "write_run_report",
]
