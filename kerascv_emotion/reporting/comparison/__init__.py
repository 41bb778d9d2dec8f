"""``comparison.html`` across runs of one dataset (e.g. VGG vs AlexNet): headline metrics
with the best marked, which model wins on which class, overlaid macro ROC curves, and
parameters, model size on disk and inference speed (and, for runs exported with
``kerascv-emotion export``, each exported file's size and single-image latency).

Modules: ``entries`` (the runs read and notes on them), ``tables`` (columns, best cells, CSV),
``figures`` (heatmap, ROC overlay) and ``page`` (:func:`write_comparison`).
"""

from __future__ import annotations

from kerascv_emotion.reporting.comparison.entries import (
    comparison_notes,
    data_differences,
    per_class_matrix,
)
from kerascv_emotion.reporting.comparison.figures import f1_heatmap_figure, macro_roc_overlay_figure
from kerascv_emotion.reporting.comparison.page import write_comparison
from kerascv_emotion.reporting.comparison.tables import CLASSIFICATION_COLUMNS, row_best, winners
from kerascv_emotion.reporting.figures import grouped_bars_figure

__all__ = [
    "CLASSIFICATION_COLUMNS",
    "comparison_notes",
    "data_differences",
    "f1_heatmap_figure",
    "grouped_bars_figure",
    "macro_roc_overlay_figure",
    "per_class_matrix",
    "row_best",
    "winners",
    "write_comparison",
]
