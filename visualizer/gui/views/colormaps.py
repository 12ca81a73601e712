"""Which colormap and which levels a map is shown with.

Non-negative data (post-ReLU maps, probabilities) reads best on a perceptually
uniform sequential map; signed data (conv outputs, weights, gradients) needs a
diverging map whose centre is zero, which only holds when the levels are
symmetric around zero.
"""
from __future__ import annotations

import functools

import numpy as np
import pyqtgraph as pg

SEQUENTIAL = "viridis"
DIVERGING = "CET-D1"   # blue - white - red, zero in the middle
HEAT = "inferno"       # class activation maps: dark = no evidence, bright = the most


# pg.colormap.get keeps every map it has read (pyqtgraph 0.14), so asking on every frame is cheap.
def sequential() -> pg.ColorMap:
    return pg.colormap.get(SEQUENTIAL)


def diverging() -> pg.ColorMap:
    return pg.colormap.get(DIVERGING)


@functools.cache
def heat_overlay() -> pg.ColorMap:
    """Inferno whose low end fades to transparent: a heat map over an image hides nothing where it is 0."""
    t = np.linspace(0.0, 1.0, 256)
    rgba = pg.colormap.get(HEAT).map(t, mode="byte").astype(np.ubyte)   # (256, 4)
    rgba[:, 3] = np.round(255 * np.clip(t / 0.35, 0.0, 1.0))
    return pg.ColorMap(t, rgba, name="heat-overlay")


def for_signed(signed: bool) -> pg.ColorMap:
    return diverging() if signed else sequential()


def symmetric(low: float, high: float) -> tuple[float, float]:
    """Levels centred on zero that cover [low, high]; never empty."""
    m = max(abs(float(low)), abs(float(high)))
    if not np.isfinite(m) or m <= 0.0:
        m = 1.0
    return (-m, m)


def display_levels(low: float, high: float, signed: bool) -> tuple[float, float]:
    """Levels for setImage: symmetric for signed data, widened when flat (a constant map)."""
    if signed:
        return symmetric(low, high)
    lo, hi = float(low), float(high)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return (lo, hi)
