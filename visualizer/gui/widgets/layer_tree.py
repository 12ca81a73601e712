"""The model's layers as a tree: name, kind, output shape, parameters, details.

Reads ``ModelInfo``/``LayerInfo`` by duck typing (any object with the same
attributes works), so it depends on the introspection module's data only.
"""
from __future__ import annotations

import zlib

from PyQt6.QtCore import QEvent, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QIcon, QPainter, QPixmap
from PyQt6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem

COL_NAME, COL_KIND, COL_SHAPE, COL_PARAMS, COL_DETAIL = range(5)
HIGHLIGHT = QColor(255, 176, 0, 110)   # a lesson's defining block: amber, readable on every theme
HEADERS = ("Layer", "Kind", "Output", "Parameters", "Details")
NAME_ROLE = Qt.ItemDataRole.UserRole

# Colour tags readable on dark, light and high-contrast backgrounds alike.
KIND_COLORS = {
    "input": "#9e9e9e",
    "conv": "#4c9be8",
    "depthwise_conv": "#35c0e0",
    "linear": "#b07be0",
    "pool": "#41b883",
    "activation": "#f0a030",
    "norm": "#e0c040",
    "dropout": "#a0a0a0",
    "flatten": "#7f8c8d",
    "container": "#607080",
    "block": "#607080",
    "output": "#e05a5a",
    "softmax": "#e05a5a",
    "upsample": "#20b0b0",
    "embedding": "#c080a0",
    "attention": "#d06090",
    "other": "#8a8a8a",
}


def kind_color(kind: str) -> QColor:
    """A stable colour per kind; unknown kinds get one derived from their name."""
    known = KIND_COLORS.get(str(kind).lower())
    if known:
        return QColor(known)
    hue = zlib.crc32(str(kind).encode()) % 360
    return QColor.fromHsv(hue, 140, 220)


def _kind_icon(kind: str, size: int = 12) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(kind_color(kind))
    p.setPen(QColor(0, 0, 0, 120))
    p.drawRoundedRect(1, 1, size - 2, size - 2, 3, 3)
    p.end()
    return QIcon(pm)


def format_shape(shape) -> str:
    if shape is None:
        return ""
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        return str(shape)
    return "×".join(str(d) for d in dims) if dims else "scalar"


def format_params(n) -> str:
    if n is None:
        return ""
    return f"{int(n):,}"


def format_detail(layer) -> str:
    """The introspector's own description; the activation name when it gave none."""
    detail = str(getattr(layer, "detail", "") or "")
    if detail:
        return detail
    act = getattr(layer, "activation", None)
    if not act:
        return ""
    params = getattr(layer, "activation_params", None) or ()
    items = params.items() if isinstance(params, dict) else params
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in items)
    return f"{act}({args})" if args else str(act)


class LayerTree(QTreeWidget):
    """Emits ``layer_selected(name)`` when the user clicks a layer or moves with the keys.

    ``select(name)`` is the program choosing a layer: it moves the cursor
    without emitting, so a view and the tree can follow each other without
    bouncing the selection back and forth.
    """

    layer_selected = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._highlighted: tuple[str, ...] = ()
        self._quiet = False
        self._current_before_press = None
        self.setColumnCount(len(HEADERS))
        self.setHeaderLabels(list(HEADERS))
        self.setUniformRowHeights(True)      # fast for deep models, follows the font size
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAllColumnsShowFocus(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Model layers")
        self.setToolTip("Click a layer, or move with the arrow keys, to show it in the views")
        # Never a horizontal scroll bar: columns that do not fit the panel's width are hidden, most
        # important first (name, kind, output, parameters, details); the tooltip has all of them.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.header()
        header.setStretchLastSection(True)
        for col in (COL_NAME, COL_KIND, COL_SHAPE, COL_PARAMS):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        self.currentItemChanged.connect(self._on_current_changed)
        self.itemClicked.connect(self._on_clicked)

    # -- content ----------------------------------------------------------
    def set_model_info(self, info) -> None:
        """Rebuild from ``info.layers`` (execution order); keeps the selected name if it survives."""
        keep = self.current_layer()
        self._quiet = True
        try:
            self.clear()
            self._items = {}
            self._highlighted = ()
            for layer in getattr(info, "layers", ()) or ():
                self._add_layer(layer)
            self.expandAll()
            self.fit_columns()
            if keep in self._items:
                self.setCurrentItem(self._items[keep])
        finally:
            self._quiet = False

    def _parent_item(self, layer):
        parent = getattr(layer, "parent", None)
        if parent and parent in self._items:
            return self._items[parent]
        # A parent the list does not contain (filtered container): nearest dotted ancestor.
        name = str(getattr(layer, "name", ""))
        while "." in name:
            name = name.rsplit(".", 1)[0]
            if name in self._items:
                return self._items[name]
        return None

    def _add_layer(self, layer) -> None:
        name = str(getattr(layer, "name", ""))
        kind = str(getattr(layer, "kind", "") or "")
        parent = self._parent_item(layer)
        item = QTreeWidgetItem(parent) if parent is not None else QTreeWidgetItem(self)
        # Children show their last name part; the full dotted name is in the tooltip.
        shown = name.rsplit(".", 1)[-1] if parent is not None else name
        item.setText(COL_NAME, shown or "(model)")
        item.setText(COL_KIND, kind)
        item.setIcon(COL_KIND, _kind_icon(kind))
        item.setText(COL_SHAPE, format_shape(getattr(layer, "output_shape", None)))
        item.setText(COL_PARAMS, format_params(getattr(layer, "params", None)))
        item.setTextAlignment(COL_PARAMS, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setText(COL_DETAIL, format_detail(layer))
        item.setData(COL_NAME, NAME_ROLE, name)
        type_name = str(getattr(layer, "type_name", "") or "")
        functional = bool(getattr(layer, "functional", False))
        extra = " · ".join(t for t in (item.text(COL_SHAPE), f"{item.text(COL_PARAMS)} parameters"
                                       if item.text(COL_PARAMS) else "", item.text(COL_DETAIL)) if t)
        tip = f"{name}\n{type_name}" + (f"\n{extra}" if extra else "") + \
              ("\n(functional call inside forward())" if functional else "")
        for col in range(len(HEADERS)):
            item.setToolTip(col, tip)
        if functional:
            self._italicise(item)
        self._items[name] = item

    def _italicise(self, item: QTreeWidgetItem) -> None:
        # An item font is a full copy (size included): it is re-made from the
        # view's font whenever that changes, or italic rows would not grow.
        font = self.font()
        font.setItalic(True)
        for col in range(len(HEADERS)):
            item.setFont(col, font)

    def fit_columns(self) -> None:
        for col in range(len(HEADERS)):
            self.setColumnHidden(col, False)
        self._content_widths = [max(self.sizeHintForColumn(c), self.header().sectionSizeHint(c))
                                for c in range(len(HEADERS))]
        for col in (COL_NAME, COL_KIND, COL_SHAPE, COL_PARAMS):
            self.resizeColumnToContents(col)
        self._fit_to_width()

    def _fit_to_width(self) -> None:
        """Show the columns, most important first, that fit the width; the last shown takes the rest."""
        widths = getattr(self, "_content_widths", None)
        if not widths:
            return
        room = self.viewport().width()
        used, shown = 0, 0
        for col, w in enumerate(widths):
            if col > COL_NAME and used + w > room:
                break
            used += w
            shown = col + 1
        for col in range(len(HEADERS)):
            self.setColumnHidden(col, col >= shown)

    def sizeHint(self) -> QSize:
        # Not the width of every column's contents (a scroll area's default): that grew the whole
        # left panel each time a model opened. The panel's width is the window's to decide.
        return QSize(240, 220)

    def visible_columns(self) -> list[int]:
        return [c for c in range(len(HEADERS)) if not self.isColumnHidden(c)]

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        self._fit_to_width()

    def changeEvent(self, ev):
        super().changeEvent(ev)
        # Presentation mode enlarges the application font: widen the columns with it.
        if ev.type() == QEvent.Type.FontChange:
            for item in self._items.values():
                if item.font(COL_NAME).italic():
                    self._italicise(item)
            self.highlight(self._highlighted)
            self.fit_columns()

    # -- a lesson's highlight -----------------------------------------------
    def highlight(self, names) -> None:
        """Mark these layers (a lesson's defining block: bold on amber); () clears the marks."""
        self._highlighted = tuple(n for n in names if n in self._items)
        marked = set(self._highlighted)
        for name, item in self._items.items():
            on = name in marked
            for col in range(len(HEADERS)):
                item.setBackground(col, QBrush(HIGHLIGHT) if on else QBrush())
            font = item.font(COL_NAME)
            if font.bold() != on:
                font.setBold(on)
                item.setFont(COL_NAME, font)
        if self._highlighted:
            self.scrollToItem(self._items[self._highlighted[0]], QAbstractItemView.ScrollHint.PositionAtTop)

    def highlighted(self) -> tuple[str, ...]:
        return self._highlighted

    # -- selection --------------------------------------------------------
    def layer_names(self) -> list[str]:
        return list(self._items)

    def item_for(self, name: str) -> QTreeWidgetItem | None:
        return self._items.get(name)

    def current_layer(self) -> str | None:
        item = self.currentItem()
        return None if item is None else item.data(COL_NAME, NAME_ROLE)

    def select(self, name: str | None) -> bool:
        """Move the cursor to ``name`` without emitting; False if there is no such layer."""
        item = self._items.get(name) if name is not None else None
        self._quiet = True
        try:
            if item is None:
                self.setCurrentItem(None)
                return False
            self.setCurrentItem(item)
            self.scrollToItem(item)
            return True
        finally:
            self._quiet = False

    def _on_current_changed(self, current, _previous) -> None:
        if current is not None and not self._quiet:
            self.layer_selected.emit(current.data(COL_NAME, NAME_ROLE))

    def mousePressEvent(self, ev):
        self._current_before_press = self.currentItem()
        super().mousePressEvent(ev)

    def _on_clicked(self, item, _col) -> None:
        # A click on the row that was already current changes nothing, so
        # currentItemChanged stays silent; re-announce it so a click always
        # brings the layer back into the views.
        if item is not None and item is self._current_before_press:
            self.layer_selected.emit(item.data(COL_NAME, NAME_ROLE))
        self._current_before_press = None
