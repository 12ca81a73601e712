"""Workarounds for two per-frame memory leaks between pyqtgraph 0.14 and PyQt6 (6.11, sip 6.17).

1. Each time an ImageItem renders, pyqtgraph wraps its display array in a QImage,
   passing the array's address as a Python ``int``. PyQt6 keeps about 100 bytes for
   every QImage built from an ``int`` address and never frees them; built from a
   ``sip.voidptr`` it keeps nothing. The live views render about ten images per
   snapshot: over a 30-minute run with every view open this alone grew the GUI
   process by about 0.7 MB a minute (bench/view_memory.py finds it in a minute).
2. A curve drawn as line segments keeps them in a ``sip.array`` that only grows, and
   pyqtgraph hands QPainter a slice of it when fewer are in use, which is every frame
   for a growing history. Each slice of a ``sip.array`` keeps 72 bytes. Sized exactly
   (a new array whenever the count changes; the caller fills it afterwards), nothing
   is sliced. Found with ``bench/soak.py --tracemalloc``: about 80 KB a minute.

tests/gui/test_pyqtgraph_fixes.py measures both. Installed only for PyQt (PySide
takes arrays and pointers directly and is not affected).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph.functions as pg_functions
from pyqtgraph.Qt import QT_LIB, QtGui
from pyqtgraph.Qt.internals import PrimitiveArray

_pyqtgraph_resize = PrimitiveArray.resize


def _ndarray_to_qimage(arr: np.ndarray, fmt: QtGui.QImage.Format) -> QtGui.QImage:
    """As pyqtgraph.functions.ndarray_to_qimage, with a ``sip.voidptr`` address (no leak)."""
    from pyqtgraph.Qt import sip

    h, w = arr.shape[:2]
    qimg = QtGui.QImage(sip.voidptr(arr), w, h, arr.strides[0], fmt)
    qimg.data = arr   # the QImage does not own the pixels: keep them alive as long as it lives
    return qimg


def _resize_exactly(self: PrimitiveArray, size: int) -> None:
    """As PrimitiveArray.resize, but a sip.array is always exactly ``size`` long (never sliced)."""
    if not self.use_sip_array or size == self._capa:
        _pyqtgraph_resize(self, size)
        return
    from pyqtgraph.Qt import sip

    self._siparray = sip.array(self._Klass, size)
    self._capa = self._size = size


def install() -> bool:
    """Route pyqtgraph's QImage wrapping and primitive arrays through the leak-free versions."""
    if not QT_LIB.startswith("PyQt"):
        return False
    pg_functions.ndarray_to_qimage = _ndarray_to_qimage
    PrimitiveArray.resize = _resize_exactly
    return True
