"""A workaround for a per-frame memory leak between pyqtgraph 0.14 and PyQt6.

Each time an ImageItem renders, pyqtgraph wraps its display array in a QImage,
passing the array's address as a Python ``int``. PyQt6 (6.11, sip 6.17) keeps
about 100 bytes for every QImage built from an ``int`` address and never frees
them; built from a ``sip.voidptr`` it keeps nothing. The live views render about
ten images per snapshot, so over a 30-minute run with every view open this alone
grew the GUI process by about 0.7 MB a minute (bench/view_memory.py finds it in a
minute; tests/gui/test_pyqtgraph_fixes.py measures it).

The replacement is pyqtgraph's own function with that one argument changed, and
is installed only for PyQt (PySide takes the array itself and is not affected).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph.functions as pg_functions
from pyqtgraph.Qt import QT_LIB, QtGui


def _ndarray_to_qimage(arr: np.ndarray, fmt: QtGui.QImage.Format) -> QtGui.QImage:
    """As pyqtgraph.functions.ndarray_to_qimage, with a ``sip.voidptr`` address (no leak)."""
    from pyqtgraph.Qt import sip

    h, w = arr.shape[:2]
    qimg = QtGui.QImage(sip.voidptr(arr), w, h, arr.strides[0], fmt)
    qimg.data = arr   # the QImage does not own the pixels: keep them alive as long as it lives
    return qimg


def install() -> bool:
    """Route pyqtgraph's array-to-QImage wrapping through the leak-free version; True if installed."""
    if not QT_LIB.startswith("PyQt"):
        return False
    pg_functions.ndarray_to_qimage = _ndarray_to_qimage
    return True
