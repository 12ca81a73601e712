"""HealthView: one row per layer with its health figures beside their thresholds, flags coloured.

Fed the torch-free :class:`~visualizer.core.health.HealthReport` (a measured batch or the
live monitor's latest), it computes nothing: each figure is written as the report holds
it, each column title carries the thresholds that figure is judged by (the same
``RULES`` the command line prints), a cell whose figure raised a flag takes that flag's
colour, and the row's first flag comes with its line on what to try. Below the table,
the selected (else the first flagged) layer's flags and advice are written out in full,
so nothing depends on how wide the advice column is.
"""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from visualizer.core.health import (
    DEAD,
    EXPLODING,
    FIGURES,
    NOT_LEARNING,
    SATURATED,
    VANISHING,
    HealthReport,
    LayerHealth,
    format_figure,
    rules_for,
)

from .base import View

FLAG_COLOURS = {
    EXPLODING: QColor("#d32f2f"),
    DEAD: QColor("#6a1b9a"),
    SATURATED: QColor("#ef6c00"),
    VANISHING: QColor("#546e7a"),
    NOT_LEARNING: QColor("#f9a825"),
}
FLAG_TEXT = {EXPLODING: "white", DEAD: "white", SATURATED: "black", VANISHING: "white", NOT_LEARNING: "black"}
TITLES = {
    "dead_fraction": "dead units", "saturated_fraction": "saturated", "act_mean": "mean", "act_std": "std",
    "grad_norm": "‖∇W‖", "grad_relative": "∇ vs largest", "update_ratio": "‖ΔW‖/‖W‖",
}
COLUMNS = ("layer", "kind", *FIGURES, "flag", "what to try")
EMPTY = ("No health report yet: press Check now, or train (the report then follows the training "
         "run's own gradients).")


def column_title(figure: str, report: HealthReport) -> str:
    """"dead units" over "> 50%": a figure's title with every threshold it is judged by."""
    limits = " | ".join(r.text(report.thresholds) for r in rules_for(figure))
    return f"{TITLES[figure]}\n{limits}"


class HealthView(View):
    title = "Health"
    check_requested = pyqtSignal()          # the user wants a fresh measurement of the model

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._report: HealthReport | None = None
        self._names: tuple[str, ...] = ()
        self._cells: dict[tuple[int, int], str | None] = {}     # the flag colouring each cell now
        # Each column's widest text when the columns were last fitted (None: fit at the next draw).
        # Columns are fitted again only when a text outgrows its column: live figures change every
        # frame, and fitting measured every cell (1 ms a frame), and made the columns jitter.
        self._fitted: dict[int, float] | None = None
        self._items: dict[tuple[int, int], QTableWidgetItem] = {}   # the table's, by (row, column)
        self._metrics = None   # the table's font metrics during a draw
        self.summary = self.live_label()
        self.check_button = QPushButton("Check now")
        self.check_button.setToolTip("Measure every layer on a batch of 256 samples of the data")
        self.check_button.clicked.connect(self.check_requested)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        # Fitted to their contents by _draw when a text outgrows its column: in ResizeToContents
        # mode every cell's setText measured the whole column again, ~60 us a cell, 5-10 ms a frame.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignCenter)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.cellClicked.connect(self._cell_clicked)

        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message = self.make_note()
        self.message.setText(EMPTY)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.message)
        self.stack.setCurrentWidget(self.message)
        self.compose([(self.summary, 1), self.check_button], self.stack, [self.detail])
        self.finish_setup()

    # --- the contract ----------------------------------------------------
    def set_report(self, report: HealthReport | None) -> None:
        """Show ``report`` (None: back to the empty note)."""
        self._report = report
        self._schedule()

    @property
    def report(self) -> HealthReport | None:
        return self._report

    def _clear_data(self) -> None:
        self._report = None

    def _layer_changed(self) -> None:
        if self._layer in self._names:
            self._select_row(self._names.index(self._layer))

    def csv_table(self):
        r = self._report
        if r is None or not r.layers:
            return None
        rows = [(l.name, l.kind, l.function or "", *("" if getattr(l, f) is None else float(getattr(l, f))
                                                      for f in FIGURES), " ".join(l.flags), " | ".join(l.advice))
                for l in r.layers]
        return ("layer", "kind", "function", *FIGURES, "flags", "advice"), rows

    # --- drawing -----------------------------------------------------------
    def _draw(self) -> None:
        r = self._report
        if r is None or not r.layers:
            self.message.setText(EMPTY if r is None else "This model has no layers to check.")
            self.stack.setCurrentWidget(self.message)
            self.clear_label(self.summary)
            self.detail.clear()
            self._names = ()
            return
        names = tuple(l.name for l in r.layers)
        if names != self._names:
            self._rebuild(r)
        self._metrics = self.table.fontMetrics()
        for row, layer in enumerate(r.layers):
            self._fill(row, layer)
        for col, figure in enumerate(FIGURES, start=2):
            header = self.table.horizontalHeaderItem(col)
            if header.text() != (title := column_title(figure, r)):
                header.setText(title)
                self._fitted = None
        if self._fitted is None:
            self.table.resizeColumnsToContents()     # after the titles: a column is as wide as its title too
            self._fitted = {}
            for (_row, col), item in self._items.items():
                self._fitted[col] = max(self._fitted.get(col, 0), self._metrics.horizontalAdvance(item.text()))
        self.summary.setText(self._summary_text(r))
        self._show_detail()
        self.stack.setCurrentWidget(self.table)

    def _rebuild(self, r: HealthReport) -> None:
        """Items are made once per set of layers, then updated in place."""
        self._names = tuple(l.name for l in r.layers)
        self._cells = {}
        self._items = {}     # kept, not looked up in the table for each of ~200 cells every frame
        self._fitted = None
        self.table.clearContents()
        self.table.setRowCount(len(r.layers))
        self.table.setHorizontalHeaderLabels([c if c not in TITLES else TITLES[c] for c in COLUMNS])
        for row in range(len(r.layers)):
            for col in range(len(COLUMNS)):
                item = QTableWidgetItem()
                numeric = 2 <= col < 2 + len(FIGURES)
                item.setTextAlignment((Qt.AlignmentFlag.AlignRight if numeric else Qt.AlignmentFlag.AlignLeft)
                                      | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
                self._items[(row, col)] = item
        if self._layer in self._names:
            self._select_row(self._names.index(self._layer))

    def _fill(self, row: int, layer: LayerHealth) -> None:
        kind = layer.function or layer.kind
        if layer.trainable is False:
            kind += " (frozen)"
        self._set(row, 0, layer.name, None, layer.name)
        self._set(row, 1, kind, None, "")
        for col, figure in enumerate(FIGURES, start=2):
            value = getattr(layer, figure)
            flags = layer.figure_flags(figure)
            tip = "" if value is None else "; ".join(
                f"{r.flag} when {r.text(layer.thresholds)}" for r in rules_for(figure))
            self._set(row, col, format_figure(value, figure), flags[0] if flags else None, tip)
        self._set(row, len(COLUMNS) - 2, ", ".join(layer.flags), layer.flag, "")
        advice = layer.advice[0] if layer.advice else ""
        self._set(row, len(COLUMNS) - 1, advice, None,
                  "\n".join(f"{f}: {a}" for f, a in zip(layer.flags, layer.advice)))

    def _set(self, row: int, col: int, text: str, flag: str | None, tip: str) -> None:
        item = self._items[(row, col)]
        if item.text() != text:
            item.setText(text)
            if self._fitted is not None and self._metrics.horizontalAdvance(text) > self._fitted.get(col, 0):
                self._fitted = None     # wider than anything the column was fitted to
        if item.toolTip() != tip:
            item.setToolTip(tip)
        if self._cells.get((row, col), "") == flag:
            return   # each setData repaints the table: per frame, for every cell, that was most of a draw
        self._cells[(row, col)] = flag
        if flag is None:
            item.setData(Qt.ItemDataRole.BackgroundRole, None)
            item.setData(Qt.ItemDataRole.ForegroundRole, None)
        else:
            item.setBackground(QBrush(FLAG_COLOURS[flag]))
            item.setForeground(QBrush(QColor(FLAG_TEXT[flag])))

    def _summary_text(self, r: HealthReport) -> str:
        flagged = r.flagged()
        # Plain text: LiveText's QStaticText lays rich text out at its narrowest width (one word a line).
        head = (f"{len(flagged)} of {len(r.layers)} layers flagged" if flagged else
                f"no flags: all {len(r.layers)} layers within their thresholds")
        where = f"live, step {r.step}" if r.source == "training" and r.step is not None else r.optimizer
        return f"{head} · {r.samples} samples" + (f" · {where}" if where else "")

    def _show_detail(self) -> None:
        r = self._report
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        layer = r.layers[rows[0].row()] if rows and rows[0].row() < len(r.layers) else \
            next(iter(r.flagged()), None)
        if layer is None:
            self.detail.setText("Every figure is within its thresholds. Hover a cell for the rule it is judged by.")
        elif not layer.flags:
            self.detail.setText(f"<b>{layer.name}</b>: no flag.")
        else:
            lines = [f"<b>{layer.name}</b> — <b>{f}</b>: {a}" for f, a in zip(layer.flags, layer.advice)]
            self.detail.setText("<br>".join(lines))

    # --- selection -----------------------------------------------------------
    def _select_row(self, row: int) -> None:
        self.table.blockSignals(True)
        self.table.selectRow(row)
        self.table.blockSignals(False)

    def _selection_changed(self) -> None:
        if self._report is not None:
            self._show_detail()

    def _cell_clicked(self, row: int, _col: int) -> None:
        if 0 <= row < len(self._names):
            self.layer_requested.emit(self._names[row])

    def _restyle(self) -> None:
        self._fitted = None     # another font: other widths
        self.table.resizeRowsToContents()
