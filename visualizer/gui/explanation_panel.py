"""The lesson's explanation: what to look at (two or three sentences), the formula, and its variants.

Shown in a dock above the views while a lesson is open; the dock's close button (or
Lessons › Show explanation) hides it. Variants are buttons that wrap onto new rows rather
than being cut off at a projector's width; the one applied is shown pressed, with its note.
"""
from __future__ import annotations

import html

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import QButtonGroup, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from visualizer.core.lessons import Lesson

from .widgets.flow_layout import FlowLayout

HINT = "Space starts and pauses training · F11: presentation mode · Lessons › Save lesson… keeps this set-up"


def _label(rich: bool = False) -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    # A lesson file is untrusted: its texts are shown as plain text, or escaped (html.escape)
    # inside the heading's and the note's own markup, never as HTML of their own.
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    # Wrapping text may shrink to any width: it grows in height instead of clipping.
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


class ExplanationPanel(QWidget):
    variant_chosen = pyqtSignal(str)     # a variant's title

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.lesson: Lesson | None = None
        self.heading = _label(rich=True)
        self.text = _label()
        self.formula = _label()
        formula_font = QFont("serif")
        formula_font.setStyleHint(QFont.StyleHint.Serif)
        formula_font.setItalic(True)
        self.formula.setFont(formula_font)
        self.note = _label(rich=True)
        self.hint = _label()
        self.hint.setText(HINT)
        self.hint.setEnabled(False)          # greyed: secondary
        self.variants = QWidget()
        self.flow = FlowLayout(self.variants)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, QPushButton] = {}

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(3)
        for w in (self.heading, self.text, self.formula, self.variants, self.note, self.hint):
            lay.addWidget(w)
        # As tall as its text at the width it has, no taller: the views below get the rest.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.show_lesson(None)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # Never shorter than its text at this width: a narrower window wraps it onto more lines.
        need = self.needed_height(event.size().width())
        if need != self.minimumHeight():
            self.setMinimumHeight(need)

    def needed_height(self, width: int | None = None) -> int:
        """The height the text, formula and buttons take at ``width`` (default: the current one)."""
        lay = self.layout()
        lay.activate()
        return lay.totalHeightForWidth(max(100, width or self.width()))

    # ---- content ------------------------------------------------------------------
    def show_lesson(self, lesson: Lesson | None, variant: str | None = None) -> None:
        self.lesson = lesson
        for b in list(self.buttons.values()):
            self.group.removeButton(b)
            self.flow.removeWidget(b)
            b.deleteLater()
        self.buttons.clear()
        if lesson is None:
            self.heading.setText("<b>No lesson open</b>")
            self.text.setText("Pick one from the Lessons menu: each sets the model, the data, the speed and "
                              "the views, and says here what to look at.")
            self.formula.hide()
            self.variants.hide()
            self.note.hide()
            return
        self.heading.setText(f"<b>{_escape(lesson.title)}</b>")
        self.text.setText(lesson.text)
        self.formula.setText(lesson.formula)
        self.formula.setVisible(bool(lesson.formula))
        for v in lesson.variants:
            b = QPushButton(v.title)
            b.setCheckable(True)
            b.setToolTip(v.note or f"Apply '{v.title}'")
            b.clicked.connect(lambda _checked=False, t=v.title: self.variant_chosen.emit(t))
            self.group.addButton(b)
            self.flow.addWidget(b)
            self.buttons[v.title] = b
        self.variants.setVisible(bool(lesson.variants))
        self.set_variant(variant)

    def set_variant(self, title: str | None) -> None:
        """Show ``title`` as the variant applied (no signal), with its note."""
        note = ""
        self.group.setExclusive(False)      # an exclusive group cannot have none checked
        for t, b in self.buttons.items():
            b.setChecked(t == title)
        self.group.setExclusive(True)
        if self.lesson is not None and title:
            try:
                note = self.lesson.variant(title).note
            except KeyError:
                note = ""
        self.note.setText(f"<i>{_escape(title)}</i>: {_escape(note)}" if title and note else "")
        self.note.setVisible(bool(note))

    def current_variant(self) -> str | None:
        b = self.group.checkedButton()
        return b.text() if b is not None else None


def _escape(text: str) -> str:
    return html.escape(text, quote=False)
