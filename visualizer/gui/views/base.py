"""The View base class: the contract every live view keeps (docs/architecture.md).

A view stores the latest snapshot it was given and asks the window's one frame pacer
(``frame_pacer.py``: <= 30 Hz per view, one view per event-loop turn) to draw it,
skipping work while hidden. Export (PNG, SVG, CSV),
clipboard and presentation styling live here once, so that every view gets
them the same way.
"""
from __future__ import annotations

import csv
import os
from typing import Iterable, Sequence

import pyqtgraph as pg
from PyQt6.QtCore import QEvent, QRect, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QGuiApplication, QPainter, QPalette, QPixmap
from PyQt6.QtSvg import QSvgGenerator
from PyQt6.QtWidgets import QGraphicsItem, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from visualizer.core.snapshot import EpochEnd, ProbeSnapshot, TrainingSnapshot
from visualizer.gui.widgets.live_text import LiveText

from .axes import live_axes
from .frame_pacer import FramePacer

STRETCH = object()   # in View.compose's bar: the space between the left and right controls
PRESENTATION_PT = (12, 18)   # the views' text size in presentation mode: on 720 lines, on 1080 and more
# A graphics area less tall than this (and more than twice as wide: a 1280x720 projector's
# strips) puts its two plots side by side: stacked, each was too short for readable axes.
SIDE_BY_SIDE_BELOW = 300


class View(QWidget):
    """Base of every view. Subclasses implement ``_draw`` and, when they keep
    history, the ``_ingest_*`` hooks (which see every snapshot, not only drawn ones)."""

    title: str = "View"
    lesson_key: str | None = None   # the name lessons use for this view (core.lessons.VIEW_KEYS), if any
    layer_requested = pyqtSignal(str)
    channel_selected = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._probe: ProbeSnapshot | None = None
        self._training: TrainingSnapshot | None = None
        self._layer: str | None = None
        self._presentation = False
        self._dirty = False
        self._graphics: list[pg.GraphicsLayoutWidget] = []
        self._plots: list[pg.PlotItem] = []

    # --- the contract -------------------------------------------------
    def follow(self, session) -> None:
        """Subscribe to the window's session: every change it announces reaches this view."""
        # Bound methods only: Qt drops them when this view is deleted (a lambda would outlive it).
        session.model_changed.connect(self._model_changed)
        session.layer_changed.connect(self.set_layer)
        session.probe_changed.connect(self.show_probe)
        session.training_changed.connect(self.show_training)
        session.epoch_added.connect(self.show_epoch)
        self.set_layer(session.layer)

    def _model_changed(self, _model) -> None:
        self.clear()

    def set_layer(self, name: str | None) -> None:
        if name == self._layer:
            return
        self._layer = name
        self._layer_changed()
        self._schedule()

    def show_probe(self, snap: ProbeSnapshot) -> None:
        # The same snapshot may come twice (inside a TrainingSnapshot and on its own).
        if snap is self._probe:
            return
        self._ingest_probe(snap)
        self._probe = snap
        self._schedule()

    def show_training(self, snap: TrainingSnapshot) -> None:
        self._ingest_training(snap)
        self._training = snap
        self._schedule()
        if snap.probe is not None:
            self.show_probe(snap.probe)

    def show_epoch(self, ev: EpochEnd) -> None:
        # Only views that keep epoch history (they override ``_ingest_epoch``) redraw for one.
        if type(self)._ingest_epoch is not View._ingest_epoch:
            self._ingest_epoch(ev)
            self._schedule()

    def clear(self) -> None:
        self._probe = None
        self._training = None
        self._clear_data()
        self._schedule()

    def set_presentation(self, on: bool) -> None:
        self._presentation = bool(on)
        self._apply_style()
        self._schedule()

    def export_png(self, path) -> None:
        if not self._grab().save(os.fspath(path), "PNG"):
            raise OSError(f"{path}: could not write PNG")

    def export_svg(self, path) -> None:
        # pyqtgraph's SVGExporter raises on Qt 6.11 for every PlotItem (PITFALLS.md).
        self.flush()
        self._ensure_laid_out()
        gen = QSvgGenerator()
        gen.setFileName(os.fspath(path))
        gen.setSize(self.size())
        gen.setViewBox(QRect(0, 0, self.width(), self.height()))
        gen.setTitle(self.title)
        painter = QPainter()
        if not painter.begin(gen):
            raise OSError(f"{path}: could not write SVG")
        self._cache_axes(False)   # vector axes and text in the SVG, not cached pixmaps
        try:
            self.render(painter)
        finally:
            painter.end()
            self._cache_axes(True)

    def export_csv(self, path) -> bool:
        table = self.csv_table()
        if table is None:
            return False
        header, rows = table
        with open(os.fspath(path), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
        return True

    def copy_to_clipboard(self) -> None:
        QGuiApplication.clipboard().setPixmap(self._grab())

    # --- for subclasses -----------------------------------------------
    def csv_table(self) -> tuple[Sequence[str], Iterable[Sequence]] | None:
        """(header, rows) when the view has a table to export."""
        return None

    def _draw(self) -> None:
        raise NotImplementedError

    def _ingest_probe(self, snap: ProbeSnapshot) -> None:
        pass

    def _ingest_training(self, snap: TrainingSnapshot) -> None:
        pass

    def _ingest_epoch(self, ev: EpochEnd) -> None:
        pass

    def _clear_data(self) -> None:
        pass

    def _layer_changed(self) -> None:
        pass

    def _restyle(self) -> None:
        """Re-apply pens/fonts after a presentation or palette change."""

    # --- paced repaint ---------------------------------------------------
    def flush(self) -> None:
        """Draw the latest data now, visible or not (export, headless render)."""
        FramePacer.shared().withdraw(self)
        if self._dirty:
            self._repaint(force=True)

    def _schedule(self) -> None:
        self._dirty = True
        FramePacer.shared().submit(self)

    def draw_frame(self) -> bool:
        """The pacer's call: draw if there is something new and the view is visible."""
        return self._repaint()

    def _repaint(self, force: bool = False) -> bool:
        """Draw if there is something new and the view is visible (or forced); True if it drew."""
        if not self._dirty:
            return False
        if not force and not self.on_screen():
            return False  # a hidden tab costs nothing; showEvent (or catch_up) catches up
        self._dirty = False
        self._draw()
        return True

    def on_screen(self) -> bool:
        """Shown and not covered: QMainWindow keeps the tabs behind the front one "visible", moved
        outside the window, so isVisible() alone made every hidden tab draw every frame."""
        return self.isVisible() and not self.visibleRegion().isEmpty()

    def catch_up(self) -> None:
        """Brought to the front (its tab chosen): draw what arrived while it was behind."""
        if self._dirty:
            FramePacer.shared().submit(self)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._dirty:
            FramePacer.shared().submit(self)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_style()

    # --- styling --------------------------------------------------------
    def colors(self) -> tuple[QColor, QColor]:
        """(foreground, background) from the application palette; pushed to
        black/white in presentation mode for a projector."""
        pal = self.palette()
        fg = pal.color(QPalette.ColorRole.WindowText)
        bg = pal.color(QPalette.ColorRole.Base)
        if self._presentation:
            dark = bg.lightness() < 128
            fg = QColor("white") if dark else QColor("black")
            bg = QColor("black") if dark else QColor("white")
        return fg, bg

    def accent(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.Highlight)

    def line_width(self) -> float:
        return 4.0 if self._presentation else 1.6

    def font_pt(self) -> int:
        """Text size in the view. In presentation mode it follows the screen: 18 pt on a 1080-line
        projector, down to 12 pt on a 720-line one, where 18 pt left no room for the images."""
        if not self._presentation:
            return 9
        screen = self.screen() or QGuiApplication.primaryScreen()
        lines = screen.geometry().height() if screen is not None else 1080
        return int(max(PRESENTATION_PT[0], min(PRESENTATION_PT[1], round(lines / 60))))

    def make_graphics(self) -> pg.GraphicsLayoutWidget:
        g = pg.GraphicsLayoutWidget()
        self._graphics.append(g)
        g.setBackground(self.colors()[1])
        return g

    def add_plot(self, graphics: pg.GraphicsLayoutWidget, **kw) -> pg.PlotItem:
        """A PlotItem in ``graphics`` with cheap-to-draw axes (axes.py), styled and registered."""
        return self.register_plot(graphics.addPlot(axisItems=live_axes(), **kw))

    def register_plot(self, plot: pg.PlotItem) -> pg.PlotItem:
        self._plots.append(plot)
        self._style_plot(plot)
        return plot

    def make_badge(self) -> QLabel:
        """The red "N non-finite values replaced" notice (hidden while N == 0)."""
        badge = QLabel()
        badge.setStyleSheet("QLabel { background: #c62828; color: white; padding: 2px 6px; border-radius: 3px; }")
        badge.hide()
        return badge

    @staticmethod
    def set_badge(badge: QLabel, n: int) -> None:
        if n > 0:
            badge.setText(f"{n} non-finite values replaced")
            badge.show()
        else:
            badge.hide()

    @staticmethod
    def live_label(text: str = "") -> LiveText:
        """A one-line label for text that changes every frame (see widgets/live_text.py)."""
        return LiveText(text)

    @staticmethod
    def clear_label(label: QLabel | LiveText) -> None:
        if label.text():   # QLabel.clear() re-lays out its parents even when already empty
            label.clear()

    def compose(self, bar: Sequence, body: QWidget, below: Sequence[QWidget] = ()) -> None:
        """Every view's layout: a bar of controls over ``body`` (which takes the height), then ``below``.

        In ``bar``: a widget; a str, a plain label; ``STRETCH``, the space that pushes the
        rest to the right; ``(widget, 1)``, a widget that takes the spare width itself.
        """
        row = QHBoxLayout()
        for item in bar:
            if item is STRETCH:
                row.addStretch(1)
            elif isinstance(item, str):
                row.addWidget(QLabel(item))
            elif isinstance(item, tuple):
                row.addWidget(*item)
            else:
                row.addWidget(item)
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        root.addLayout(row)
        root.addWidget(body, 1)
        for widget in below:
            root.addWidget(widget)

    def make_note(self) -> QLabel:
        note = QLabel()
        note.setWordWrap(True)
        note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return note

    def _apply_style(self) -> None:
        f = QFont(self.font())
        f.setPointSize(self.font_pt() + (2 if self._presentation else 0))
        for child in self.findChildren(QWidget):
            if not isinstance(child, pg.GraphicsView):
                child.setFont(f)
        fg, bg = self.colors()
        for g in self._graphics:
            g.setBackground(bg)
            for item in list(g.ci.items):
                if isinstance(item, pg.LabelItem):
                    self.style_label(item, item.text)
                elif isinstance(item, pg.ColorBarItem):
                    item.axis.setTextPen(fg)
                    item.axis.setStyle(tickFont=self._tick_font())
        for p in self._plots:
            self._style_plot(p)
        self._cache_axes(True)
        self._restyle()

    def _cache_axes(self, on: bool) -> None:
        """Paint every axis (ticks, text, grid lines) from a pixmap of itself.

        An axis with a grid covers its whole plot, so any curve or image update
        repainted it, replaying every tick label and grid line: that was most of
        a live plot's paint time. Cached, it is re-rendered only when its ticks
        change (a new range, a restyle) and otherwise blitted.
        """
        mode = QGraphicsItem.CacheMode.DeviceCoordinateCache if on else QGraphicsItem.CacheMode.NoCache
        for g in self._graphics:
            for item in g.scene().items():
                if isinstance(item, pg.AxisItem):
                    item.setCacheMode(mode)

    def _tick_font(self) -> QFont:
        font = QFont()
        font.setPointSize(self.font_pt())
        return font

    def _style_plot(self, plot: pg.PlotItem) -> None:
        fg, _ = self.colors()
        font = QFont()
        font.setPointSize(self.font_pt())
        pen = pg.mkPen(fg, width=2 if self._presentation else 1)
        for name in ("left", "bottom", "right", "top"):
            ax = plot.getAxis(name)
            ax.setPen(pen)
            ax.setTextPen(fg)
            ax.setStyle(tickFont=font)
            ax.labelStyle = {"color": fg.name(), "font-size": f"{self.font_pt()}pt"}
            ax._updateLabel()
        if plot.legend is not None:
            plot.legend.setLabelTextColor(fg)
            plot.legend.setLabelTextSize(f"{self.font_pt()}pt")
            for _, label in plot.legend.items:
                label.setText(label.text, color=fg.name(), size=f"{self.font_pt()}pt")
        plot.titleLabel.opts["color"] = fg.name()
        plot.titleLabel.opts["size"] = f"{self.font_pt() + 1}pt"
        plot.titleLabel.setText(plot.titleLabel.text)

    def finish_setup(self) -> None:
        """Subclasses call this last in __init__: styles every item they created."""
        self._apply_style()

    def style_label(self, label: pg.LabelItem, text: str) -> None:
        fg, _ = self.colors()
        color, size = fg.name(), f"{self.font_pt()}pt"
        if label.text == text and label.opts.get("color") == color and label.opts.get("size") == size:
            return   # setText re-lays out the whole graphics layout: only when something changed
        label.setText(text, color=color, size=size)

    @staticmethod
    def set_text(label, text: str) -> None:
        """Set a LabelItem's or TextItem's text only when it differs.

        A LabelItem's new text changes its size hint, which re-lays out (and
        repaints) every item of its GraphicsLayout; per frame that is wasted
        when the text is the same as before.
        """
        current = label.text if isinstance(label, pg.LabelItem) else label.toPlainText()
        if current != text:
            label.setText(text)

    # --- grabbing --------------------------------------------------------
    def _ensure_laid_out(self) -> None:
        if self.size().isEmpty() or not self.testAttribute(Qt.WidgetAttribute.WA_WState_Polished):
            self.ensurePolished()
        if self.width() < 50 or self.height() < 50:
            self.resize(self.sizeHint().expandedTo(QSize(640, 480)))
        lay = self.layout()
        if lay is not None:
            lay.activate()

    def _grab(self) -> QPixmap:
        self.flush()
        self._ensure_laid_out()
        return self.grab()
