"""Watch your own training run in cnn-visualizer: ``from visualizer.record import Recorder``.

See ``visualizer.core.record.recorder`` for how it works and what it costs, and the README's
"Watch your own training". The Lightning callback is ``visualizer.record.lightning.RecorderCallback``.
"""
from visualizer.core.record.recorder import Recorder

__all__ = ["Recorder"]
