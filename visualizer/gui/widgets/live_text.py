"""LiveText: a one-line label whose text changes every frame without re-laying out the window.

QLabel.setText always calls updateGeometry(): every layout from the label up to the
main window is invalidated and redone. With a step counter that is 30 times a second,
and each pass let QMainWindow shift its dock separators and repaint whole panels.
This widget only repaints itself; its size depends on its font (and, for a status-bar
field, a sample text given once), never on the text shown. Rich text (``<b>``) is
drawn; a text too long for the widget ends in "…" (plain). The plain text is the widget's
accessible name, so a screen reader reads what a QLabel would have given it.
"""
from __future__ import annotations

import html
import re

from PyQt6.QtCore import QEvent, QPointF, QSize, Qt
from PyQt6.QtGui import QPainter, QPalette, QStaticText
from PyQt6.QtWidgets import QSizePolicy, QWidget

_TAG = re.compile(r"<[^>]*>")


class LiveText(QWidget):
    def __init__(self, text: str = "", parent: QWidget | None = None, *, width_for: str = ""):
        """``width_for``: a sample of the longest text expected; the widget is that wide
        (a status-bar field). Without it, the widget takes whatever width its layout gives."""
        super().__init__(parent)
        self._text = ""
        self._static = QStaticText()
        self._static.setTextFormat(Qt.TextFormat.AutoText)
        self._width_for = width_for
        horizontal = QSizePolicy.Policy.Fixed if width_for else QSizePolicy.Policy.Ignored
        self.setSizePolicy(horizontal, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:
        text = str(text)
        if text == self._text:
            return
        self._text = text
        self._static.setText(text)
        plain = html.unescape(_TAG.sub("", text)) if "<" in text or "&" in text else text
        self.setAccessibleName(plain)
        self.setToolTip(plain)
        self.update()

    def clear(self) -> None:
        self.setText("")

    def sizeHint(self) -> QSize:
        fm = self.fontMetrics()
        width = fm.horizontalAdvance(self._width_for) + 8 if self._width_for else 0
        return QSize(width, fm.height() + 6)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self.updateGeometry()   # a new font (presentation mode) is a new size, once

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setFont(self.font())
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        fm = self.fontMetrics()
        y = (self.height() - fm.height()) / 2
        room = self.width() - 6
        if self._static.size().width() > room:
            # Too long for the room it was given (a narrow panel): end it with "…" rather than cut a
            # word in half; the whole text is in the tooltip.
            text = fm.elidedText(self.accessibleName(), Qt.TextElideMode.ElideRight, max(0, room))
            painter.drawText(QPointF(3, y + fm.ascent()), text)
        else:
            painter.drawStaticText(QPointF(3, y), self._static)
        painter.end()
