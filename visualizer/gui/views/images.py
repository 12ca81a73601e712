"""Small helpers shared by the image views."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6 import sip
from PyQt6.QtGui import QImage

# Up to this many pixels the fast path below is used. Beyond it pyqtgraph's own scaling (one
# chunked pass) is faster than numpy's whole-array passes, and the colour table's cost is
# small beside the pixels: a 911x911 mosaic drew 0.7-1 ms slower a frame through the fast path.
SMALL_IMAGE = 256 * 256


class MapImage(pg.ImageItem):
    """An ImageItem that keeps its colour-mapped picture in a format QPainter draws directly.

    pyqtgraph hands a one-channel image with a lookup table to Qt as an 8-bit indexed
    QImage, which QPainter converts on every paint: 0.82 ms to draw a 911x911 mosaic
    against 0.25 ms in RGB32, so the picture is converted once, when it is made. For a
    finite float image with levels and a table of up to 256 colours (what every live view
    draws) and not large, the indexed image is made here, with the colour table built once:
    pyqtgraph builds it in Python on every render (0.1 ms, most of a small image's render;
    the overview renders nine a frame).
    """

    _table_key: tuple | None = None
    _table: list[int] = []

    def render(self):
        if self._render_mapped():
            return
        super().render()
        q = self.qimage
        if not getattr(self, "_unrenderable", False) and q is not None and q.format() == QImage.Format.Format_Indexed8:
            self.qimage = q.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied if q.hasAlphaChannel()
                                            else QImage.Format.Format_RGB32)

    def _render_mapped(self) -> bool:
        """The fast path (see the class docstring); False leaves the image to pyqtgraph."""
        image, lut, levels = self.image, self.lut, self.levels
        if (image is None or image.ndim != 2 or image.dtype.kind != "f" or not 0 < image.size <= SMALL_IMAGE
                or self.autoDownsample or self.axisOrder != "row-major"
                or not isinstance(lut, np.ndarray) or lut.dtype != np.uint8 or lut.ndim != 2
                or lut.shape[1] not in (3, 4) or not 0 < len(lut) <= 256
                or levels is None or np.ndim(levels) != 1):
            return False
        if self._imageHasNans is None:   # pyqtgraph's own flag, reset by setImage
            self._imageHasNans = bool(np.isnan(image.min()))
        if self._imageHasNans:
            return False    # NaN is transparent in pyqtgraph's path (infinities clip to the ends)
        lo, hi = float(levels[0]), float(levels[1])
        n = len(lut)
        # As pyqtgraph scales: index = (value - lo) * n / (hi - lo), clipped to the table
        index = np.subtract(image, np.float32(lo), dtype=np.float32)
        index *= np.float32(n / ((hi - lo) or 1.0))
        np.clip(index, 0, n - 1, out=index)
        index = index.astype(np.uint8)
        indexed = QImage(sip.voidptr(index), index.shape[1], index.shape[0], index.strides[0],
                         QImage.Format.Format_Indexed8)
        indexed.setColorTable(self._colour_table(lut))
        alpha = lut.shape[1] == 4 and bool((lut[:, 3] < 255).any())
        # the conversion copies the pixels: the picture does not depend on ``index`` afterwards
        self.qimage = indexed.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied if alpha
                                              else QImage.Format.Format_RGB32)
        self._renderRequired = False
        self._unrenderable = False
        return True

    def _colour_table(self, lut: np.ndarray) -> list[int]:
        """``lut`` as the 0xAARRGGBB words of a QImage colour table, kept while the table is the same."""
        key = (lut.shape, lut.tobytes())
        if key != self._table_key:
            rgba = lut.astype(np.uint32)
            a = rgba[:, 3] if lut.shape[1] == 4 else np.full(len(lut), 255, np.uint32)
            self._table = ((a << 24) | (rgba[:, 0] << 16) | (rgba[:, 1] << 8) | rgba[:, 2]).tolist()
            self._table_key = key
        return self._table


def image_box(g: pg.GraphicsLayoutWidget, row: int, col: int, **kw) -> tuple[pg.ViewBox, pg.ImageItem]:
    """A ViewBox (square pixels, y down like an image) holding one ImageItem."""
    vb = g.addViewBox(row=row, col=col, **kw)
    vb.setAspectLocked(True)
    vb.invertY(True)
    vb.setMenuEnabled(False)
    img = MapImage(axisOrder="row-major")
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
