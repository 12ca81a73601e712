"""A square canvas to draw a probe input with the mouse (white ink on black, MNIST-like).

The strokes are painted straight into a fixed-size QImage backing store, so
memory stays constant however long the user scribbles and a resize of the
widget never changes what the model sees.
"""
from __future__ import annotations

import time

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter, QPen
from PyQt6.QtWidgets import QCheckBox, QHBoxLayout, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from .image_convert import qimage_gray_to_array, to_display_uint8
from .mnist_preprocess import MNIST_BOX_FRACTION, area_resize, mnist_center

CANVAS_SIZE = 280          # backing store side, 10x MNIST: enough detail, cheap to reduce
PEN_FRACTION = 0.085       # pen width / canvas side: ~2.5 px strokes after reduction to 28x28
MAX_EMIT_HZ = 30.0


class DrawingCanvas(QWidget):
    """The surface itself: paints the backing store scaled into a centred square."""

    stroke_changed = pyqtSignal()   # ink was added (while the button is down)
    stroke_finished = pyqtSignal()  # the button was released
    clear_requested = pyqtSignal()  # right-click

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image = QImage(CANVAS_SIZE, CANVAS_SIZE, QImage.Format.Format_Grayscale8)
        self.image.fill(0)
        self._last: QPointF | None = None
        self._empty = True
        self.setMinimumSize(140, 140)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw with the left mouse button; right-click clears")
        self.setAccessibleName("Drawing pad")

    # -- geometry ---------------------------------------------------------
    def sizeHint(self) -> QSize:
        return QSize(224, 224)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, w: int) -> int:
        return w

    def target_rect(self) -> QRectF:
        """Where the canvas is shown: the largest centred square in the widget."""
        side = float(min(self.width(), self.height()))
        return QRectF((self.width() - side) / 2.0, (self.height() - side) / 2.0, side, side)

    def to_canvas(self, pos: QPointF) -> QPointF:
        r = self.target_rect()
        k = CANVAS_SIZE / max(r.width(), 1.0)
        return QPointF((pos.x() - r.x()) * k, (pos.y() - r.y()) * k)

    # -- content ----------------------------------------------------------
    def is_empty(self) -> bool:
        return self._empty

    def clear(self) -> None:
        self.image.fill(0)
        self._empty = True
        self.update()

    def set_image(self, image01: np.ndarray) -> None:
        gray = to_display_uint8(image01)
        if gray.ndim == 3:
            gray = gray.mean(axis=2).astype(np.uint8)
        big = area_resize(gray.astype(np.float32) / 255.0, CANVAS_SIZE, CANVAS_SIZE)
        data = np.ascontiguousarray(np.clip(big * 255.0 + 0.5, 0, 255).astype(np.uint8))
        self.image = QImage(data.data, CANVAS_SIZE, CANVAS_SIZE, CANVAS_SIZE,
                            QImage.Format.Format_Grayscale8).copy()
        self._empty = not bool(data.any())
        self.update()

    def pixels(self) -> np.ndarray:
        """The canvas as (CANVAS_SIZE, CANVAS_SIZE) float32 in [0, 1]."""
        return qimage_gray_to_array(self.image)

    def _draw_to(self, p: QPointF) -> None:
        painter = QPainter(self.image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = QPen(QColor(255, 255, 255), CANVAS_SIZE * PEN_FRACTION,
                   Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        if self._last is None:
            painter.drawPoint(p)
        else:
            painter.drawLine(self._last, p)
        painter.end()
        self._last = p
        self._empty = False
        self.update()

    # -- events -----------------------------------------------------------
    def mousePressEvent(self, ev):
        if ev.button() == Qt.MouseButton.RightButton:
            self.clear_requested.emit()
            return
        if ev.button() == Qt.MouseButton.LeftButton:
            self._last = None
            self._draw_to(self.to_canvas(ev.position()))
            self.stroke_changed.emit()

    def mouseMoveEvent(self, ev):
        if ev.buttons() & Qt.MouseButton.LeftButton and self._last is not None:
            self._draw_to(self.to_canvas(ev.position()))
            self.stroke_changed.emit()

    def mouseReleaseEvent(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton and self._last is not None:
            self._last = None
            self.stroke_finished.emit()

    def paintEvent(self, ev):
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        r = self.target_rect()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(r, self.image)
        painter.setPen(QPen(self.palette().mid().color(), 1))
        painter.drawRect(r.adjusted(0, 0, -1, -1))
        if self._empty:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(r, Qt.AlignmentFlag.AlignCenter, "Draw a digit here")
        painter.end()


class DrawingPad(QWidget):
    """Canvas plus a Clear button and the MNIST-centring switch.

    ``drawing_changed`` carries a fresh (H, W) float32 array in [0, 1] while
    drawing (at most ``MAX_EMIT_HZ`` per second, the latest state always sent)
    and once more when the button is released.
    """

    drawing_changed = pyqtSignal(object)
    cleared = pyqtSignal()

    def __init__(self, parent=None, *, output_size=(28, 28), mnist_style: bool = True):
        super().__init__(parent)
        self._out_h, self._out_w = int(output_size[0]), int(output_size[1])
        self._box_fraction = MNIST_BOX_FRACTION
        self._clock = time.monotonic  # tests replace it to check throttling deterministically
        self._last_emit = float("-inf")

        self.canvas = DrawingCanvas(self)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Erase the drawing (or right-click the pad)")
        self.mnist_check = QCheckBox("Centre like MNIST")
        self.mnist_check.setChecked(mnist_style)
        self.mnist_check.setToolTip(
            "Fit the drawing into a 20x20 box and centre it by its centre of mass in 28x28, "
            "the way MNIST digits were prepared, so MNIST-trained models read it well")

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.clear_button)
        row.addWidget(self.mnist_check)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.canvas, 1)
        lay.addLayout(row)

        # Single-shot: the move that arrives too early arms it so the latest ink
        # still goes out when the window reopens, rather than being dropped.
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.timeout.connect(self._emit_now)

        self.canvas.stroke_changed.connect(self._on_stroke)
        self.canvas.stroke_finished.connect(self._on_release)
        self.canvas.clear_requested.connect(self.clear)
        self.clear_button.clicked.connect(self.clear)
        self.mnist_check.toggled.connect(self._on_style_toggled)

    # -- public API -------------------------------------------------------
    @property
    def mnist_style(self) -> bool:
        return self.mnist_check.isChecked()

    def set_output_size(self, h: int, w: int) -> None:
        self._out_h, self._out_w = int(h), int(w)

    def set_box_fraction(self, fraction: float) -> None:
        """How much of the field the centred ink fills: MNIST 20/28, the UCI digits 1.0."""
        self._box_fraction = float(fraction)

    def output_size(self) -> tuple[int, int]:
        return self._out_h, self._out_w

    def clear(self) -> None:
        self._pending.stop()
        self.canvas.clear()
        self.cleared.emit()

    def set_image(self, image01: np.ndarray) -> None:
        """Show an image on the pad (it can then be drawn over); emits nothing."""
        self._pending.stop()
        self.canvas.set_image(image01)

    def is_empty(self) -> bool:
        return self.canvas.is_empty()

    def current_image(self) -> np.ndarray:
        """What the model would get now: (H, W) float32 in [0, 1], a fresh array."""
        px = self.canvas.pixels()
        if self.mnist_style:
            out = mnist_center(px, self._out_h, self._out_w, self._box_fraction)
        else:
            out = area_resize(px, self._out_h, self._out_w)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    # -- throttling -------------------------------------------------------
    def _emit_now(self) -> None:
        self._pending.stop()
        self._last_emit = self._clock()
        self.drawing_changed.emit(self.current_image())

    def _on_stroke(self) -> None:
        wait = 1.0 / MAX_EMIT_HZ - (self._clock() - self._last_emit)
        if wait <= 0:
            self._emit_now()
        elif not self._pending.isActive():
            self._pending.start(max(1, int(wait * 1000)))

    def _on_release(self) -> None:
        self._emit_now()

    def _on_style_toggled(self, _on: bool) -> None:
        if not self.canvas.is_empty():
            self._emit_now()
