"""Helpers for bar charts with category labels on the x axis."""
from __future__ import annotations

import pyqtgraph as pg
from PyQt6.QtGui import QFontMetrics


def abbreviate(name: str, width: int = 10) -> str:
    """Keep the informative tail of a dotted module path ("layer4.1.conv2" -> "4.1.conv2")."""
    if len(name) <= width:
        return name
    tail = name.split(".")
    out = tail.pop()
    while tail and len(tail[-1]) + len(out) + 1 <= width:
        out = tail.pop() + "." + out
    return out if len(out) <= width else "…" + out[-(width - 1):]


def set_category_ticks(axis: pg.AxisItem, names, max_labels: int = 24) -> None:
    """One tick per bar; only every k-th is labelled, k chosen so the labels never overlap.

    k follows the axis's length in pixels and the labels' width in its font, and is chosen
    again when the axis is resized (a projector's large type, a narrower window).
    """
    axis._category_names = [abbreviate(n) for n in names]
    axis._category_max = max_labels
    if not getattr(axis, "_category_follows", False):
        axis._category_follows = True
        axis.geometryChanged.connect(lambda a=axis: _label_every_kth(a))
    _label_every_kth(axis)


def _label_every_kth(axis: pg.AxisItem) -> None:
    names = axis._category_names
    if not names:
        axis._category_ticks = None
        axis.setTicks([[], []])
        return
    font = axis.style.get("tickFont") or axis.font()
    widest = max(QFontMetrics(font).horizontalAdvance(n) for n in names) + 8   # a gap between labels
    fit = int(axis.geometry().width() // widest) if axis.geometry().width() > 0 else axis._category_max
    step = max(1, -(-len(names) // max(1, min(axis._category_max, fit))))
    major = [(i, n) for i, n in enumerate(names) if i % step == 0]
    minor = [(i, "") for i, n in enumerate(names) if i % step]
    if getattr(axis, "_category_ticks", None) != (major, minor):
        axis._category_ticks = (major, minor)
        axis.setTicks([major, minor])
