"""Class-probability bars, shared by ProbabilityView and the softmax case of ActivationView."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtGui import QColor

from .bars import set_category_ticks
from .finite import finite_float32

TRUE_COLOUR = QColor("#2e7d32")      # green: the right answer
WRONG_COLOUR = QColor("#c62828")     # red: predicted but wrong


class ProbabilityBars:
    """Creates its items once in ``plot``; ``update`` changes them in place."""

    def __init__(self, plot: pg.PlotItem):
        self.plot = plot
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        plot.addItem(self.bars)
        plot.setYRange(0, 1.05, padding=0)
        plot.setLabel("left", "probability")
        plot.setMouseEnabled(x=False, y=False)
        self._names: tuple[str, ...] | None = None
        self.brushes: list[QColor] = []

    def update(self, probabilities, class_names, label: int | None, base: QColor) -> int:
        p, _ = finite_float32(probabilities)
        names = tuple(class_names) if len(class_names) == len(p) else tuple(str(i) for i in range(len(p)))
        pred = int(np.argmax(p)) if len(p) else -1
        brushes = []
        for i in range(len(p)):
            if i == label:
                brushes.append(TRUE_COLOUR)
            elif i == pred:
                brushes.append(WRONG_COLOUR)
            else:
                brushes.append(base)
        pens = [pg.mkPen("k", width=2.5) if i == pred else pg.mkPen(None) for i in range(len(p))]
        if len(p):
            self.bars.setOpts(x=np.arange(len(p)), height=p, width=0.7, brushes=brushes, pens=pens)
        else:   # pyqtgraph 0.14 raises on an empty pens list
            self.bars.setOpts(x=[], height=[], width=0.7, brushes=None, pens=None, brush=base, pen=None)
        self.brushes = brushes
        if names != self._names:
            set_category_ticks(self.plot.getAxis("bottom"), names)
            self.plot.setXRange(-0.6, len(p) - 0.4, padding=0)
            self._names = names
        return pred
