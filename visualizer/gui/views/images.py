"""Small helpers shared by the image views."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg


def image_box(g: pg.GraphicsLayoutWidget, row: int, col: int, **kw) -> tuple[pg.ViewBox, pg.ImageItem]:
    """A ViewBox (square pixels, y down like an image) holding one ImageItem."""
    vb = g.addViewBox(row=row, col=col, **kw)
    vb.setAspectLocked(True)
    vb.invertY(True)
    vb.setMenuEnabled(False)
    img = pg.ImageItem(axisOrder="row-major")
    img.setAutoDownsample(False)
    vb.addItem(img)
    return vb, img


def display_input(image: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W) gray or (H, W, 3) RGB for an ImageItem."""
    a = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    if a.ndim == 2:
        return a
    if a.shape[0] == 3:
        return np.ascontiguousarray(a.transpose(1, 2, 0))
    return a[0]


def fit(vb: pg.ViewBox, shape: tuple[int, ...]) -> None:
    h, w = shape[:2]
    vb.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)
