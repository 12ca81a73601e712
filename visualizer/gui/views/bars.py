"""Helpers for bar charts with category labels on the x axis."""
from __future__ import annotations

import pyqtgraph as pg


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
    """One tick per bar; with many bars only every k-th is labelled so the labels never overlap."""
    names = list(names)
    step = max(1, -(-len(names) // max_labels))
    major = [(i, abbreviate(n)) for i, n in enumerate(names) if i % step == 0]
    minor = [(i, "") for i, n in enumerate(names) if i % step]
    axis.setTicks([major, minor])
