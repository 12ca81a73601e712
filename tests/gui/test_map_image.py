"""MapImage maps a float image through its colour table itself: the same picture pyqtgraph makes."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PyQt6.QtGui import QImage

from visualizer.gui.views import colormaps
from visualizer.gui.views.images import MapImage


def pixels(q: QImage) -> np.ndarray:
    """(H, W, 4) premultiplied B, G, R, A bytes of what QPainter is given."""
    q = q.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    ptr = q.constBits()
    ptr.setsize(q.sizeInBytes())
    return np.frombuffer(ptr, np.uint8).reshape(q.height(), q.bytesPerLine() // 4, 4)[:, :q.width()].copy()


def rendered(item: pg.ImageItem, image, cmap, levels) -> QImage:
    item.setColorMap(cmap)
    item.setImage(image, autoLevels=False, levels=levels)
    item.render()
    return item.qimage


@pytest.mark.parametrize("cmap, levels", [(colormaps.diverging(), (-2.0, 2.0)),
                                          (colormaps.sequential(), (0.0, 3.5)),
                                          (colormaps.heat_overlay(), (0.0, 1.0))])   # with transparency
def test_the_picture_is_pyqtgraphs_own_in_a_format_drawn_directly(qapp, cmap, levels):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(37, 53)).astype(np.float32) * 1.5   # values beyond both levels too
    image[0, :2] = levels                                          # exactly on the ends
    ours = rendered(MapImage(axisOrder="row-major"), image, cmap, levels)
    theirs = rendered(pg.ImageItem(axisOrder="row-major"), image, cmap, levels)
    alpha = cmap is colormaps.heat_overlay()
    assert ours.format() == (QImage.Format.Format_ARGB32_Premultiplied if alpha else QImage.Format.Format_RGB32)
    assert theirs.format() == QImage.Format.Format_Indexed8       # what the fast path replaces
    diff = np.abs(pixels(ours).astype(int) - pixels(theirs).astype(int))
    assert diff.max() <= 1, diff.max()                             # premultiplying may round by one


def test_an_image_with_nan_is_left_to_pyqtgraph_which_draws_nan_transparent(qapp):
    image = np.ones((4, 4), np.float32)
    image[1, 2] = np.nan
    q = rendered(MapImage(axisOrder="row-major"), image, colormaps.sequential(), (0.0, 2.0))
    assert q.pixelColor(2, 1).alpha() == 0 and q.pixelColor(0, 0).alpha() == 255
