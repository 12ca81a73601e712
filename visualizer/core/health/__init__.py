"""Model health: dead, saturated, vanishing, exploding and not-learning layers, with what to try.

This package's top level is torch-free (records, thresholds, the live monitor, text), so the
GUI process can import it; ``visualizer.core.health.measure`` needs torch and measures a
model on a batch of its data.
"""
from .activations import ActivationBatch, merge_batches
from .monitor import HealthMonitor
from .records import (
    ADVICE,
    DEAD,
    DEFAULT_THRESHOLDS,
    EXPLODING,
    FIGURE_LABELS,
    FIGURES,
    FLAGS,
    NOT_LEARNING,
    RULES,
    SATURATED,
    VANISHING,
    HealthAlert,
    HealthReport,
    LayerHealth,
    Rule,
    Thresholds,
    format_figure,
    judge,
    rules_for,
)
from .report import GradientFigures, gradient_figures, make_rows

__all__ = ["ADVICE", "DEAD", "DEFAULT_THRESHOLDS", "EXPLODING", "FIGURE_LABELS", "FIGURES", "FLAGS", "NOT_LEARNING",
           "RULES", "SATURATED", "VANISHING", "ActivationBatch", "GradientFigures", "HealthAlert", "HealthMonitor",
           "HealthReport", "LayerHealth", "Rule", "Thresholds", "format_figure", "gradient_figures", "judge",
           "make_rows", "merge_batches", "rules_for"]
