"""The Qt-free engine: models, data, probing, training, checkpoints.

Nothing under this package may import PyQt6, pyqtgraph or ``visualizer.gui``
(tests/core/test_qt_free.py enforces it): it must run in a plain script or a
headless training job.
"""
