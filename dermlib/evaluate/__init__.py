"""Evaluation of classifiers: metrics report, calibration, selective prediction and data splits.

Pure numpy (no framework, no dataset), so the training CLI, the model card and the Model page all
share one implementation.
"""

from __future__ import annotations

from dermlib.evaluate.calibration import (
    choose_uncertain_thresholds,
    entropy,
    expected_calibration_error,
    fit_temperature,
    held_out_calibration_check,
    is_uncertain,
    normalized_entropy,
    reliability_bins,
    softmax,
)
from dermlib.evaluate.metrics import (
    SKIN_TYPE_GROUPS,
    calibration_check_summary,
    coverage_accuracy_curve,
    ece_summary,
    evaluation_report,
    headline_metrics,
    limitation_notes,
)
from dermlib.evaluate.reports import EVALUATION_FILE, malignant_alert_line, model_reports
from dermlib.evaluate.splits import SPLIT_NAMES, stratified_group_split

__all__ = [
    "EVALUATION_FILE",
    "SKIN_TYPE_GROUPS",
    "SPLIT_NAMES",
    "calibration_check_summary",
    "choose_uncertain_thresholds",
    "coverage_accuracy_curve",
    "ece_summary",
    "entropy",
    "evaluation_report",
    "expected_calibration_error",
    "fit_temperature",
    "headline_metrics",
    "held_out_calibration_check",
    "is_uncertain",
    "limitation_notes",
    "malignant_alert_line",
    "model_reports",
    "normalized_entropy",
    "reliability_bins",
    "softmax",
    "stratified_group_split",
]
