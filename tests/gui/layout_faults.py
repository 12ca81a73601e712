"""What a user would see as a broken layout, found by walking the window's visible widgets.

- text that does not fit its label, button, check box or tab (measured with the widget's font);
- a visible widget reaching outside its parent (scrolled content inside a scroll area excepted);
- a horizontal scroll bar shown anywhere;
- tabs past the end of their tab bar with no scroll arrows to reach them (a tab behind the arrows
  is listed in the facts: a row of more tabs than fit scrolls);
- overview labels overlapping each other or leaving their cell;
- a layer list showing fewer than MIN_ROWS rows, a loss/accuracy plot under MIN_PLOT_HEIGHT pixels.
"""
from __future__ import annotations

from PyQt6.QtCore import QRect, Qt
from PyQt6.QtGui import QFontMetrics, QTextDocument
from PyQt6.QtWidgets import (
    QAbstractScrollArea,
    QCheckBox,
    QLabel,
    QPushButton,
    QScrollArea,
    QScrollBar,
    QTabBar,
    QToolButton,
    QWidget,
)

MIN_ROWS = 8
MIN_PLOT_HEIGHT = 70
SLACK = 2     # pixels of rounding


def _name(w: QWidget) -> str:
    parts = []
    while w is not None and len(parts) < 4:
        parts.append(w.objectName() or type(w).__name__)
        w = w.parentWidget()
    return "/".join(reversed(parts))


def _text_width(w: QWidget, text: str, rich: bool) -> float:
    if rich:
        doc = QTextDocument()
        doc.setDefaultFont(w.font())
        doc.setHtml(text)
        return doc.idealWidth()
    fm = QFontMetrics(w.font())
    return max((fm.horizontalAdvance(line) for line in text.split("\n")), default=0)


def _shown(text: str) -> str:
    """A label's or button's text as drawn: "&Pooling" shows "Pooling" (the & marks the shortcut key)."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def _in_scrolled_content(w: QWidget) -> bool:
    p = w.parentWidget()
    while p is not None:
        if isinstance(p.parentWidget(), QAbstractScrollArea) and p is p.parentWidget().viewport():
            return True
        p = p.parentWidget()
    return False


def _visible(w: QWidget) -> bool:
    size = w.size()   # not w.width(): the training panel has a field of that name
    return w.isVisible() and size.width() > 0 and size.height() > 0 and not w.visibleRegion().isEmpty()


def layout_faults(window) -> tuple[list[str], dict]:
    faults: list[str] = []
    scrolled: list[str] = []
    widgets = [w for w in window.findChildren(QWidget) if _visible(w) and not w.isWindow()]
    for w in widgets:
        parent = w.parentWidget()
        if parent is not None and not _in_scrolled_content(w) and not isinstance(parent, QTabBar):
            inside = parent.rect().adjusted(-SLACK, -SLACK, SLACK, SLACK)
            if not inside.contains(w.geometry()) and not isinstance(w, QScrollBar):
                faults.append(f"outside its parent: {_name(w)} {w.geometry()} in {parent.rect()}")
        if isinstance(w, QScrollBar) and w.orientation().name == "Horizontal" and w.maximum() > w.minimum():
            faults.append(f"horizontal scroll bar: {_name(w)}")
        if (isinstance(w, QScrollArea) and w.widget() is not None
                and w.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
                and w.widget().width() > w.viewport().width() + SLACK):
            # No scroll bar to reach it: what is wider than the area is cut off at its right edge.
            faults.append(f"cut off at the right of its scroll area: {_name(w.widget())} "
                          f"({w.widget().width()} > {w.viewport().width()})")
        if isinstance(w, QLabel) and w.text() and w.pixmap().isNull():
            rich = w.textFormat().name == "RichText" or (w.textFormat().name == "AutoText" and "<" in w.text())
            text = w.text() if rich or w.buddy() is None else _shown(w.text())
            if w.wordWrap():
                if w.heightForWidth(w.contentsRect().width()) > w.contentsRect().height() + SLACK:
                    faults.append(f"wrapped text cut off: {_name(w)} {w.text()[:40]!r}")
            elif _text_width(w, text, rich) > w.contentsRect().width() + SLACK:
                faults.append(f"text cut off: {_name(w)} {w.text()[:40]!r} "
                              f"({_text_width(w, text, rich):.0f} > {w.contentsRect().width()})")
        if isinstance(w, (QPushButton, QCheckBox)) and w.text():
            need = _text_width(w, _shown(w.text()), False) + (24 if isinstance(w, QCheckBox) else 8)
            if need > w.size().width() + SLACK:
                faults.append(f"button text cut off: {_name(w)} {w.text()!r} ({need:.0f} > {w.size().width()})")
        if isinstance(w, QTabBar) and w.count():
            # A row of more tabs than fit scrolls (arrows at its end), like a scroll area: every title
            # stays whole and every tab can be reached. Past the end without arrows is a fault.
            arrows = any(_visible(b) for b in w.findChildren(QToolButton))
            for i in range(w.count()):
                r = w.tabRect(i)
                if r.right() > w.size().width() + SLACK or r.left() < -SLACK:
                    if arrows:
                        scrolled.append(w.tabText(i))
                    else:
                        faults.append(f"tab past the end of its bar: {w.tabText(i)!r}")
                if _text_width(w, w.tabText(i), False) > r.width() + SLACK:
                    faults.append(f"tab title cut off: {w.tabText(i)!r}")
    facts: dict = {"tabs_behind_arrows": scrolled}
    tree = window.layer_tree
    if _visible(tree):
        rows = tree.viewport().height() // max(1, tree.sizeHintForRow(0))
        facts["layer_rows"] = int(rows)
        if rows < min(MIN_ROWS, len(tree.layer_names())):
            faults.append(f"the layer list shows {rows} rows")
    curves = window.curves
    if curves is not None and _visible(curves):
        heights = [int(p.vb.height()) for p in (curves.loss_plot, curves.acc_plot)]
        facts["plot_heights"] = heights
        if min(heights) < MIN_PLOT_HEIGHT:
            faults.append(f"loss/accuracy plots {heights} pixels high")
    overview = window.overview
    if overview is not None and _visible(overview):
        rects = []
        for name, label in overview._labels.items():
            if not label.isVisible() or not label.toPlainText():
                continue
            r = label.sceneBoundingRect()
            box = overview._boxes[name].sceneBoundingRect()
            if not box.adjusted(-SLACK, -SLACK, SLACK, SLACK).contains(r):
                faults.append(f"overview label {name!r} leaves its cell ({r} not in {box})")
            rects.append((name, r))
        for i, (a, ra) in enumerate(rects):
            for b, rb in rects[i + 1:]:
                if ra.intersects(rb):
                    faults.append(f"overview labels {a!r} and {b!r} overlap")
    facts["views_share"] = _views_share(window)
    facts["side_widths"] = [window.layers_dock.size().width(), window.training_dock.size().width()]
    facts["window"] = [window.width(), window.height()]
    return faults, facts


def _views_share(window) -> float:
    """The share of the window's area the views (overview, tabs, curves, lesson) cover."""
    area = 0
    seen: list[QRect] = []
    for view in window.views:
        dock = window.view_docks.get(view)
        if dock is not None and _visible(dock) and all(dock.geometry() != r for r in seen):
            seen.append(dock.geometry())
            area += dock.width() * dock.height()
    return round(area / max(1, window.width() * window.height()), 3)

