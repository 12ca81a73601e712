"""Health flags on the layer tree: a dot in the flag's colour before the layer's name, the advice in its tooltip.

The marks follow the latest health report (live or checked): a layer flagged there has a
dot, one that is not has none. The tree rebuilds its items for every new model, so this
keeps no item, only names: it looks each one up when it marks it, and forgets everything
when the model changes (the new items carry their own tooltips).
"""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor, QIcon, QPainter, QPixmap

from visualizer.core.health import HealthReport, LayerHealth

from ..views.health import FLAG_COLOURS
from .layer_tree import COL_NAME, HEADERS, LayerTree

MARK_ROLE = Qt.ItemDataRole.UserRole + 7   # the flags an item is marked with, for tests and screen readers


def flag_dot(colour: QColor, size: int = 12) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(colour)
    p.setPen(QColor(0, 0, 0, 140))
    p.drawEllipse(1, 1, size - 2, size - 2)
    p.end()
    return QIcon(pm)


def mark_tooltip(plain: str, row: LayerHealth) -> str:
    lines = [f"{flag}: {advice}" for flag, advice in zip(row.flags, row.advice)]
    return f"{plain}\n\nHealth: " + "\n".join(lines) if lines else plain


class HealthMarks:
    """Marks ``tree``'s layers with the flags of a HealthReport."""

    def __init__(self, tree: LayerTree):
        self.tree = tree
        self._plain: dict[str, str] = {}     # marked layer -> its tooltip before the mark

    def show(self, report: HealthReport | None) -> None:
        flagged = {r.name: r for r in report.flagged()} if report is not None else {}
        for name in list(self._plain):
            if name not in flagged:
                self._unmark(name)
        for name, row in flagged.items():
            self._mark(name, row)

    def marked(self) -> dict[str, tuple[str, ...]]:
        """{layer: flags} of every layer marked now."""
        out = {}
        for name in self._plain:
            item = self.tree.item_for(name)
            if item is not None:
                out[name] = tuple(item.data(COL_NAME, MARK_ROLE) or ())
        return out

    def forget(self) -> None:
        """The tree was rebuilt for a new model: its items are new and unmarked."""
        self._plain.clear()

    def _mark(self, name: str, row: LayerHealth) -> None:
        item = self.tree.item_for(name)
        if item is None:
            return
        if name not in self._plain:
            self._plain[name] = item.toolTip(COL_NAME)
        if tuple(item.data(COL_NAME, MARK_ROLE) or ()) == row.flags and item.toolTip(COL_NAME) == \
                mark_tooltip(self._plain[name], row):
            return   # the same flags and advice: nothing to redraw (a live report comes four times a second)
        item.setIcon(COL_NAME, flag_dot(FLAG_COLOURS[row.flags[0]]))
        item.setData(COL_NAME, MARK_ROLE, list(row.flags))
        tip = mark_tooltip(self._plain[name], row)
        for col in range(len(HEADERS)):
            item.setToolTip(col, tip)

    def _unmark(self, name: str) -> None:
        plain = self._plain.pop(name)
        item = self.tree.item_for(name)
        if item is None:
            return
        item.setIcon(COL_NAME, QIcon())
        item.setData(COL_NAME, MARK_ROLE, None)
        for col in range(len(HEADERS)):
            item.setToolTip(col, plain)
