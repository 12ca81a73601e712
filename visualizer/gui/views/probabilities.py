"""ProbabilityView: the probe sample's class probabilities."""
from __future__ import annotations

from PyQt6.QtWidgets import QWidget

from .base import View
from .probability_bars import ProbabilityBars


class ProbabilityView(View):
    title = "Prediction"
    lesson_key = "prediction"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.headline = self.live_label("No prediction yet.")
        self.graphics = self.make_graphics()
        self.plot = self.add_plot(self.graphics)
        self.bars = ProbabilityBars(self.plot)
        self.plot.setLabel("bottom", "class (green: true label, red: wrong prediction, outlined: predicted)")
        self.compose([(self.headline, 1)], self.graphics)
        self.finish_setup()

    def _clear_data(self) -> None:
        self.bars.update([], (), None, self.accent())

    def _draw(self) -> None:
        snap = self._probe
        if snap is None:
            self.headline.setText("No prediction yet.")
            self.bars.update([], (), None, self.accent())
            return
        pred = self.bars.update(snap.probabilities, snap.class_names, snap.label, self.accent())
        if pred < 0:
            self.headline.setText("The model produced no class scores.")
            return
        name = snap.class_names[pred] if pred < len(snap.class_names) else str(pred)
        text = f"predicted <b>{name}</b> ({100 * float(snap.probabilities[pred]):.1f}%)"
        if snap.label is not None:
            true = snap.class_names[snap.label] if snap.label < len(snap.class_names) else str(snap.label)
            verdict = "correct" if snap.label == pred else "wrong"
            text += f" · true <b>{true}</b> ({verdict})"
        self.headline.setText(text)

    def csv_table(self):
        snap = self._probe
        if snap is None:
            return None
        names = snap.class_names if len(snap.class_names) == len(snap.probabilities) else \
            tuple(str(i) for i in range(len(snap.probabilities)))
        return ("class", "probability"), [(n, float(p)) for n, p in zip(names, snap.probabilities)]
