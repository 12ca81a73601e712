"""Reusable controls composed by the main window."""
from .drawing_pad import DrawingPad
from .input_panel import InputPanel, ProbeInput
from .layer_tree import LayerTree
from .training_panel import TrainingPanel

__all__ = ["DrawingPad", "InputPanel", "LayerTree", "ProbeInput", "TrainingPanel"]
