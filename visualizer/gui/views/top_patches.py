"""TopPatchesView: what each channel of a conv layer looks for, as its top dataset patches.

Fed the torch-free :class:`~visualizer.core.channels.TopPatches` record (a finished or
cancelled search, or the live accumulator's latest), it draws one cell per channel with
the channel's best patches (best first, left to right), each the receptive field of the
channel's maximum in that image. While a search runs the app calls ``set_progress``; the
Cancel button asks it to stop. Clicking a patch emits ``patch_selected(index, split)``:
the app makes that dataset image the input.
"""
from __future__ import annotations

import pyqtgraph as pg
from PyQt6.QtCore import QRectF, pyqtSignal
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QGraphicsRectItem, QProgressBar, QPushButton, QSpinBox, QStackedWidget, QWidget

from visualizer.core.channels import TopPatches

from .base import View
from .images import fit, image_box
from .patch_grid import PatchGrid, render

MAX_CHANNELS = 64          # cells drawn at once; "first channel" pages through wider layers
EMPTY = "Pick a conv layer and press Find top patches: every channel's nine most exciting dataset patches."


class TopPatchesView(View):
    title = "Top patches"
    search_requested = pyqtSignal(str)        # conv layer to search the data for
    cancel_requested = pyqtSignal()
    patch_selected = pyqtSignal(int, str)     # dataset position of the image, and its split

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._result: TopPatches | None = None
        self._grid: PatchGrid | None = None
        self._drawn = None                    # (result, first channel, background) of the mosaic shown
        self._selected: tuple[int, int] | None = None   # (channel, rank)
        self._searching = False
        self._blocked: str | None = None      # why no search can be asked for now (set_search_blocked)
        self._error: str | None = None        # why the last search failed (shown until the next result)
        self._placeholder: str | None = None  # what to say while there is no result (set_placeholder)

        self.summary = self.live_label()
        self.first = QSpinBox()
        self.first.setPrefix("channels from ")
        self.first.setSingleStep(MAX_CHANNELS)
        self.first.setVisible(False)
        self.first.valueChanged.connect(lambda _v: self._schedule())
        self.search_button = QPushButton("Find top patches")
        self.search_button.setToolTip("Search the data set for the patches that excite each channel most")
        self.search_button.clicked.connect(self._request_search)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m images")
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_requested)

        self.graphics = self.make_graphics()
        self.box, self.mosaic_item = image_box(self.graphics, 0, 0)
        self.box.setMouseEnabled(x=False, y=False)
        self.marker = QGraphicsRectItem()
        self.marker.setVisible(False)
        self.box.addItem(self.marker)
        self.readout = self.live_label()
        self.graphics.scene().sigMouseClicked.connect(self._scene_clicked)
        self.graphics.scene().sigMouseMoved.connect(self._scene_moved)
        self.message = self.make_note()
        self.message.setText(EMPTY)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.graphics)
        self.stack.addWidget(self.message)
        self.stack.setCurrentWidget(self.message)
        self.compose([(self.summary, 1), self.first, self.progress, self.cancel_button, self.search_button],
                     self.stack, [self.readout])
        self._update_search_button()
        self.finish_setup()

    # --- the contract ----------------------------------------------------
    def set_patches(self, result: TopPatches | None) -> None:
        """Show a search's (or the live accumulator's) result; a finished or cancelled one ends the progress."""
        self._result = result
        self._selected = None
        self._error = None
        if result is not None and (result.complete or result.cancelled):
            self._set_searching(False)
        n = len(result.channels) if result is not None else 0
        self.first.setVisible(n > MAX_CHANNELS)
        self.first.setMaximum(max(0, (n - 1) // MAX_CHANNELS * MAX_CHANNELS))
        self._schedule()

    def set_progress(self, done: int, total: int) -> None:
        """A search is running: ``done`` of ``total`` images looked at."""
        self._set_searching(done < total)
        self.progress.setMaximum(max(1, int(total)))
        self.progress.setValue(int(done))

    def set_search_blocked(self, reason: str | None) -> None:
        """No search now (training runs, not a conv layer, an ONNX model): the button says why in its tooltip."""
        self._blocked = reason or None
        self._update_search_button()

    def set_placeholder(self, text: str | None) -> None:
        """What the view says while it has no result (None: how to start a search)."""
        if text != self._placeholder:
            self._placeholder = text
            self._schedule()

    def search_failed(self, text: str) -> None:
        """The search asked for could not run: the progress ends and ``text`` is written under the grid."""
        self._set_searching(False)
        self._error = text
        self.readout.setText(text)
        self._schedule()

    @property
    def result(self) -> TopPatches | None:
        return self._result

    def _clear_data(self) -> None:
        self._result = None
        self._error = None
        self._selected = None
        self._set_searching(False)

    def _layer_changed(self) -> None:
        self._update_search_button()

    # --- drawing -----------------------------------------------------------
    def _draw(self) -> None:
        r = self._result
        if r is None or not r.channels:
            self.message.setText((self._error or self._placeholder or EMPTY) if r is None
                                 else f"{r.layer} has no channels to show.")
            self.stack.setCurrentWidget(self.message)
            self.clear_label(self.summary)
            return
        first = self.first.value() if len(r.channels) > MAX_CHANNELS else 0
        shown = r.channels[first:first + MAX_CHANNELS]
        bg = self.colors()[1]
        key = (first, bg.name())
        if self._drawn is None or self._drawn[0] is not r or self._drawn[1:] != key:   # `is`: records hold arrays
            grid = PatchGrid.for_patches(r.receptive_field.patch_shape, max(r.k, 1), len(shown))
            mosaic = render(grid, [c.patches for c in shown], (bg.red(), bg.green(), bg.blue()))
            reshaped = self._grid is None or grid.shape != self._grid.shape
            self._grid = grid
            self.mosaic_item.setImage(mosaic, levels=(0, 255))
            if reshaped:
                fit(self.box, grid.shape)
            self._drawn = (r, *key)
        self.summary.setText(self._summary_text(r))
        self._draw_marker()
        self.stack.setCurrentWidget(self.graphics)

    def _summary_text(self, r: TopPatches) -> str:
        f = r.receptive_field
        what = f"{r.layer}: top {r.k} of {r.searched:,} {r.split + ' ' if r.split else ''}images per channel"
        if r.cancelled:
            what += f" (cancelled at {r.searched:,} of {r.total:,})"
        elif r.searched < r.total:
            what += f" (so far, of {r.total:,})"
        return f"{what} · field {f.size[0]}×{f.size[1]} px, {f.jump[0]} px apart · best first, left to right"

    def _draw_marker(self) -> None:
        if self._selected is None or self._grid is None:
            self.marker.setVisible(False)
            return
        channel, rank = self._selected
        cell = channel - (self.first.value() if self._result and len(self._result.channels) > MAX_CHANNELS else 0)
        y, x = self._grid.origin(cell, rank)
        self.marker.setRect(QRectF(x - 0.5, y - 0.5, self._grid.patch_w + 1, self._grid.patch_h + 1))
        self.marker.setPen(pg.mkPen(QColor("#ffb300"), width=self.line_width() + 1))
        self.marker.setVisible(True)

    # --- interaction -------------------------------------------------------
    def patch_at(self, y: float, x: float) -> tuple[int, int] | None:
        """(channel, rank) of the patch under mosaic pixel (y, x), if a patch is drawn there."""
        self.flush()
        r, g = self._result, self._grid
        if r is None or g is None:
            return None
        hit = g.hit(y, x)
        if hit is None:
            return None
        first = self.first.value() if len(r.channels) > MAX_CHANNELS else 0
        channel = first + hit[0]
        if channel >= len(r.channels) or hit[1] >= len(r.channels[channel].indices):
            return None
        return channel, hit[1]

    def select_patch_at(self, y: float, x: float) -> int | None:
        """Select the patch under mosaic pixel (y, x); emits ``patch_selected``; returns the image's index."""
        found = self.patch_at(y, x)
        if found is None:
            return None
        channel, rank = found
        index = int(self._result.channels[channel].indices[rank])
        self._selected = found
        self.readout.setText(self._describe(channel, rank))
        self._draw_marker()
        self.patch_selected.emit(index, self._result.split)
        return index

    def _describe(self, channel: int, rank: int) -> str:
        ch = self._result.channels[channel]
        y0, x0, y1, x1 = (int(v) for v in ch.boxes[rank])
        return (f"channel {ch.channel} · #{rank + 1} · image {int(ch.indices[rank])} of "
                f"{self._result.split or 'the data'} · score {float(ch.scores[rank]):.4g} · "
                f"rows {y0}–{y1 - 1}, columns {x0}–{x1 - 1}")

    def _scene_moved(self, pos) -> None:
        """Hovering names the channel and image under the mouse (the cells carry no labels)."""
        if self._result is None or self.mosaic_item.image is None:
            return
        p = self.mosaic_item.mapFromScene(pos)
        found = self.patch_at(p.y(), p.x())
        if found is not None:
            self.readout.setText(self._describe(*found) + " · click to make it the input")

    def _scene_clicked(self, ev) -> None:
        if self.mosaic_item.image is None or not self.mosaic_item.sceneBoundingRect().contains(ev.scenePos()):
            return
        p = self.mosaic_item.mapFromScene(ev.scenePos())
        self.select_patch_at(p.y(), p.x())

    def _request_search(self) -> None:
        layer = self._layer or (self._result.layer if self._result is not None else None)
        if layer and not self._blocked:
            self._set_searching(True)
            self.progress.setValue(0)
            self.search_requested.emit(layer)

    def _set_searching(self, on: bool) -> None:
        self._searching = bool(on)
        self.progress.setVisible(self._searching)
        self.cancel_button.setVisible(self._searching)
        self._update_search_button()

    def _update_search_button(self) -> None:
        layer = self._layer or (self._result.layer if self._result is not None else None)
        self.search_button.setEnabled(bool(layer) and not self._searching and not self._blocked)
        self.search_button.setText(f"Find top patches of {layer}" if layer else "Find top patches")
        self.search_button.setToolTip(self._blocked or "Search the data set for the patches that excite each "
                                                       "channel most")

    def csv_table(self):
        r = self._result
        if r is None:
            return None
        rows = [(c.channel, rank + 1, int(i), float(s), int(p[0]), int(p[1]), *(int(v) for v in b))
                for c in r.channels for rank, (i, s, p, b) in enumerate(zip(c.indices, c.scores, c.positions, c.boxes))]
        return ("channel", "rank", "index", "score", "y", "x", "y0", "x0", "y1", "x1"), rows
