"""``RecorderCallback`` for ``lightning.Trainer`` (the ``lightning`` extra)."""
from visualizer.core.record.lightning import RecorderCallback

__all__ = ["RecorderCallback"]
