"""A spin box for quantities that span decades (learning rates, weight decay).

Arrow keys and the mouse wheel walk a 1-2-5 ladder (0.001, 0.002, 0.005,
0.01, ...) instead of adding a constant, and the value is shown compactly
("0.001", "3e-05") rather than with six trailing decimals. Typed values in
any float notation, scientific included, are accepted.
"""
from __future__ import annotations

import math

from PyQt6.QtGui import QValidator
from PyQt6.QtWidgets import QAbstractSpinBox, QDoubleSpinBox

_LADDER = (1.0, 2.0, 5.0)


def ladder_step(value: float, steps: int) -> float:
    """Move ``steps`` rungs along the 1-2-5 ladder from ``value`` (snapping first)."""
    if value <= 0:
        value = 1e-12
    exp = math.floor(math.log10(value))
    mant = value / 10 ** exp
    # The rung at or below the value when going up, at or above when going down,
    # so an off-ladder value like 0.003 goes to 0.005 / 0.002 in one step.
    idx = max(i for i, m in enumerate(_LADDER) if m <= mant * (1 + 1e-9))
    pos = exp * 3 + idx
    on_rung = abs(mant - _LADDER[idx]) < 1e-6 * mant
    if steps < 0 and not on_rung:
        pos += 1
    pos += steps
    e, i = divmod(pos, 3)
    return _LADDER[i] * 10.0 ** e


class LogSpinBox(QDoubleSpinBox):
    def __init__(self, parent=None, *, minimum=1e-6, maximum=10.0, value=0.01):
        super().__init__(parent)
        self.setDecimals(10)  # Qt rounds the value to `decimals`: keep 1e-6 steps exact
        self.setRange(minimum, maximum)
        self.setKeyboardTracking(False)  # emit on Enter/focus-out, not on each typed digit
        self.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
        self.setValue(value)

    def stepBy(self, steps: int) -> None:
        self.setValue(min(self.maximum(), max(self.minimum(), ladder_step(self.value(), steps))))

    def textFromValue(self, value: float) -> str:
        return f"{value:.4g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        t = text.strip()
        try:
            float(t)
            return QValidator.State.Acceptable, text, pos
        except ValueError:
            # Half-typed numbers ("1e", "0.", "-") must be allowed while typing.
            if all(ch in "0123456789.eE+-" for ch in t):
                return QValidator.State.Intermediate, text, pos
            return QValidator.State.Invalid, text, pos
