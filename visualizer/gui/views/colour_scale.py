"""A colour bar told its levels only when they change, and levels that do not change every frame.

A ColorBarItem redraws its axis (ticks, labels: 1.6 ms of a 256-channel feature-map frame) and
rebuilds its lookup table whenever it is given levels or a colormap, the same or not. Live maps
change range a little on every snapshot, so the levels shown are *steady*: rounded outward to a
step of a 40th to a 20th of their span (so the data fills more than 90% of them), and kept while the
data stays inside them and fills at least 75% of them. The image is drawn with exactly the levels
the bar shows; nothing is clipped, and the contrast given up is at most a quarter of the range.
"""
from __future__ import annotations

import math

import pyqtgraph as pg

from . import colormaps

STEPS = 40            # the levels are multiples of a nice step >= span / STEPS
KEEP_FILL = 0.75      # keep the shown levels while the data fills at least this share of them


def _nice_step(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= x."""
    k = math.floor(math.log10(x))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * 10 ** k >= x:
            return m * 10 ** k
    return 10.0 ** (k + 1)


def steady_levels(previous: tuple[float, float] | None, levels: tuple[float, float]) -> tuple[float, float]:
    """``previous`` while it still holds ``levels`` well; otherwise ``levels`` rounded outward.

    Rounding keeps a symmetric pair symmetric and a zero end at zero.
    """
    lo, hi = float(levels[0]), float(levels[1])
    span = hi - lo
    if not (math.isfinite(lo) and math.isfinite(hi)) or span <= 0:
        return (lo, hi)
    if previous is not None:
        p_lo, p_hi = previous
        if p_lo <= lo and hi <= p_hi and span >= KEEP_FILL * (p_hi - p_lo):
            return previous
    step = _nice_step(span / STEPS)
    # The tolerance keeps a value already on the grid (3.7 in steps of 0.1) where it is.
    return (round(math.floor(lo / step + 1e-9) * step, 12), round(math.ceil(hi / step - 1e-9) * step, 12))


class ColourScale:
    """The levels and colormap of ``bar`` (and the images linked to it), applied only when they differ."""

    def __init__(self, bar: pg.ColorBarItem):
        self.bar = bar
        self._applied: tuple[tuple[float, float], bool] | None = None
        self._steady: tuple[float, float] | None = None

    def steady(self, levels: tuple[float, float]) -> tuple[float, float]:
        """Steady levels for this bar's next frame (see the module docstring)."""
        self._steady = steady_levels(self._steady, levels)
        return self._steady

    def restart(self) -> None:
        """Another layer or channel: its levels owe nothing to the last one's."""
        self._steady = None

    def show(self, levels: tuple[float, float], signed: bool) -> None:
        levels = (float(levels[0]), float(levels[1]))
        if self._applied is not None and self._applied[1] == signed and self._applied[0] == levels:
            return
        if self._applied is None or self._applied[1] != signed:
            self.bar.setColorMap(colormaps.for_signed(signed))
        self.bar.setLevels(levels)
        self._applied = (levels, signed)
