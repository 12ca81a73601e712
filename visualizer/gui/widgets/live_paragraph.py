"""LiveParagraph: rich, word-wrapped text that changes with every record, without re-laying out the window.

A word-wrapped QLabel asks its parents for a new layout at every setText, and the main
window then re-lays out all its docks (and shifts their separators): with the step-by-step
numbers changing at every training snapshot that was a re-layout per frame. This widget
draws its text itself and changes its height only when a text needs more lines than it
has room for (or when it is resized), never for a text that fits: nothing is cut off and
the window stays still.
"""
from __future__ import annotations

import math

from PyQt6.QtCore import QEvent, QSize
from PyQt6.QtGui import QAbstractTextDocumentLayout, QPainter, QPalette, QTextDocument
from PyQt6.QtWidgets import QSizePolicy, QWidget


class LiveParagraph(QWidget):
    def __init__(self, parent: QWidget | None = None, *, min_lines: int = 1):
        super().__init__(parent)
        self._text = ""
        self._min_lines = min_lines
        self._doc = QTextDocument()
        self._doc.setDocumentMargin(2)
        self._doc.setDefaultFont(self.font())
        self._height = 0
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._fit(shrink=True)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:
        text = str(text)
        if text == self._text:
            return
        self._text = text
        self._doc.setHtml(text)
        self.setToolTip(self._doc.toPlainText() if len(text) > 80 else "")
        self._fit(shrink=False)
        self.update()

    def clear(self) -> None:
        self.setText("")

    def needed_height(self, width: int | None = None) -> int:
        self._doc.setTextWidth(max(20, width if width is not None else self.width()))
        lines = self._min_lines * self.fontMetrics().lineSpacing() + 4
        return max(lines, math.ceil(self._doc.size().height()))

    def _fit(self, *, shrink: bool) -> None:
        need = self.needed_height()
        if need > self._height or (shrink and need != self._height):
            self._height = need
            self.setFixedHeight(need)     # the one re-layout: a text that needs more room than there was

    def sizeHint(self) -> QSize:
        return QSize(0, self._height)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit(shrink=True)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._doc.setDefaultFont(self.font())
            self._fit(shrink=True)

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        self._doc.setTextWidth(max(20, self.width()))
        ctx = QAbstractTextDocumentLayout.PaintContext()
        palette = QPalette(self.palette())
        palette.setColor(QPalette.ColorRole.Text, self.palette().color(QPalette.ColorRole.WindowText))
        ctx.palette = palette
        self._doc.documentLayout().draw(painter, ctx)
        painter.end()
