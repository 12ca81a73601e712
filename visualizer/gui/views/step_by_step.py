"""StepByStepView: one conv, pooling or fully connected unit of the real model, computed in front of the class.

It draws the record it is given (``core.explain.records``: ``ConvStep``, ``PoolStep``,
``LinearStep``) and computes nothing itself. For a convolution: the input map of one input
channel, padded, with the window's cells and the next window (so the stride shows) drawn
on it; the patch, the kernel and their element-wise products as numbers on colours; the
sum over every input channel plus the bias, the activation, and the value in the real
output map, which is shown beside with the position marked. Pooling shows the window and
its winner or its sum and divisor; a fully connected unit its largest contributions.

Play/Step ask for the next window (``position_requested``; for a fully connected layer,
``channel_selected`` with the next unit) and wait for its record before asking again, so a
slow engine is never flooded. Clicking the output map asks for that position.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QPushButton, QSpinBox, QStackedWidget, QWidget

from visualizer.core.explain.records import ConvStep, LinearStep, PoolStep

from ..widgets.live_paragraph import LiveParagraph
from . import colormaps
from .base import STRETCH, View
from .colour_scale import ColourScale
from .finite import finite_float32
from .images import fit, image_box
from .number_grid import NumberGrid, format_number

SPEEDS = (("1 window/s", 1000), ("3 windows/s", 333), ("10 windows/s", 100))
MAX_TERMS = 6            # channel sums written out in the equation; the rest are summed as "…"
AGREE = 1e-4             # |computed - real| / (1 + |real|) below this: the two are the same number


def agrees(computed: float, real: float) -> bool:
    return abs(computed - real) <= AGREE * (1.0 + abs(real))


def rect(x0: float, y0: float, x1: float, y1: float) -> tuple[list[float], list[float]]:
    return [x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0]


def conv_equation(s: ConvStep) -> str:
    """Σ over input channels + bias = total → activation, against the real output (rich text)."""
    sums = [float(v) for v in s.channel_sums]
    terms = [f"{format_number(v)}" for v in sums[:MAX_TERMS]]
    if len(sums) > MAX_TERMS:
        terms.append(f"… ({len(sums) - MAX_TERMS} more: {format_number(sum(sums[MAX_TERMS:]))})")
    what = "channel sums" if len(sums) > 1 else "sum of the products"
    text = f"{what}: {' + '.join(terms)}"
    if s.has_bias:
        text += f" + bias {format_number(s.bias)}"
    text += f" = <b>{s.total:.4f}</b>"
    if s.activation is not None:
        a = s.activation
        shown = a.computed if a.computed is not None else a.output
        text += f" → {a.function} → <b>{shown:.4f}</b>"
    ok = agrees(s.total, s.output)
    text += f"   ·   real output {s.output:.4f} {'✓' if ok else '≠'}"
    if s.activation is not None:
        text += f", after {s.activation.layer}: {s.activation.output:.4f}"
    elif s.next_layer:
        text += f" (then {s.next_layer})"
    return text


def pool_equation(s: PoolStep) -> str:
    if s.mode == "max":
        text = f"max of the window = <b>{s.computed:.4f}</b> at input (y={s.winner[0]}, x={s.winner[1]})"
    else:
        text = (f"sum {format_number(s.window_sum)} / {s.divisor} cells = <b>{s.computed:.4f}</b>"
                + ("" if s.inside.all() else " (padding cells hold 0)"))
    ok = agrees(s.computed, s.output)
    return text + f"   ·   real output {s.output:.4f} {'✓' if ok else '≠'}"


def linear_equation(s: LinearStep) -> str:
    k = len(s.top)
    text = f"{k} largest w·x: {format_number(float(s.products[s.top].sum(dtype=np.float64)))}"
    if k < s.in_features:
        text += f" + the other {s.in_features - k}: {format_number(s.rest)}"
    if s.has_bias:
        text += f" + bias {format_number(s.bias)}"
    text += f" = <b>{s.total:.4f}</b>"
    if s.activation is not None:
        a = s.activation
        text += f" → {a.function} → <b>{(a.computed if a.computed is not None else a.output):.4f}</b>"
    return text + f"   ·   real output {s.output:.4f} {'✓' if agrees(s.total, s.output) else '≠'}"


class StepByStepView(View):
    title = "Step by step"
    lesson_key = "step_by_step"
    position_requested = pyqtSignal(int, int)     # (y, x): compute this window next

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._step: ConvStep | PoolStep | LinearStep | None = None
        self._problem = ""               # why there is no record (shown instead of the prompt)
        self._awaiting = False           # a request is out: the timer waits for its record
        # Wrapping (at projector sizes it must wrap rather than clip), and live: it changes with every
        # record, during training at every snapshot, which a QLabel turned into a window re-layout.
        self.headline = LiveParagraph()
        # Short labels (the tooltips say more): the bar must fit beside a projector's side panels.
        self.back = QPushButton("◀")
        self.back.setToolTip("The previous window (or unit)")
        self.play = QPushButton("▶ Play")
        self.play.setCheckable(True)
        self.forward = QPushButton("▶")
        self.forward.setToolTip("The next window (or unit)")
        for b in (self.back, self.forward):
            b.setMaximumWidth(b.fontMetrics().horizontalAdvance("◀") + 28)
        self.speed = QComboBox()
        self.speed.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.speed.setMinimumContentsLength(6)
        for text, ms in SPEEDS:
            self.speed.addItem(text, ms)
        self.speed.setCurrentIndex(1)
        # Which output channel (or unit) to explain; the window also sets it from a click on a feature map.
        self.unit = QSpinBox()
        self.unit.setPrefix("channel ")
        self.unit.setToolTip("The output channel (of a fully connected layer: the unit) to explain")
        self.unit.setRange(0, 0)
        self.unit.setKeyboardTracking(False)
        self.unit.valueChanged.connect(self._unit_changed)
        self.input_channel = QSpinBox()
        self.input_channel.setPrefix("input ")
        self.input_channel.setToolTip("Which input channel's window, kernel and products are shown")
        self.input_channel.valueChanged.connect(lambda _: self._schedule())
        self.back.clicked.connect(lambda: self.request_next(-1))
        self.forward.clicked.connect(lambda: self.request_next(1))
        self.play.toggled.connect(self._toggle_play)
        self.speed.currentIndexChanged.connect(lambda _: self._timer.setInterval(int(self.speed.currentData())))
        self._timer = QTimer(self)
        self._timer.setInterval(int(self.speed.currentData()))
        self._timer.timeout.connect(self._tick)

        self.graphics = self.make_graphics()
        g = self.graphics
        self._t_input = g.addLabel("", row=0, col=0)
        self._t_output = g.addLabel("", row=0, col=1)
        maps = g.addLayout(row=1, col=0, colspan=2)
        self.input_box, self.input_item = image_box(maps, 0, 0)
        self.input_bar = pg.ColorBarItem(values=(-1, 1), colorMap=colormaps.diverging(), interactive=False, width=12)
        maps.addItem(self.input_bar, row=0, col=1)
        self.input_bar.setImageItem(self.input_item)
        self.output_box, self.output_item = image_box(maps, 0, 2)
        self.output_bar = pg.ColorBarItem(values=(-1, 1), colorMap=colormaps.diverging(), interactive=False, width=12)
        maps.addItem(self.output_bar, row=0, col=3)
        self.output_bar.setImageItem(self.output_item)
        self.input_scale, self.output_scale = ColourScale(self.input_bar), ColourScale(self.output_bar)
        accent = pg.mkPen("#ffab00", width=3)
        self.real_input = pg.PlotDataItem(pen=pg.mkPen((160, 160, 160), width=1.5, style=Qt.PenStyle.DashLine))
        self.window = pg.PlotDataItem(pen=accent)
        self.next_window = pg.PlotDataItem(pen=pg.mkPen("#ffab00", width=1.5, style=Qt.PenStyle.DashLine))
        self.cells = pg.ScatterPlotItem(pxMode=False, size=0.9, symbol="s", pen=pg.mkPen("#ffab00", width=1),
                                        brush=None)
        for item in (self.real_input, self.next_window, self.window, self.cells):
            self.input_box.addItem(item)
        self.marker = pg.PlotDataItem(pen=accent)
        self.output_box.addItem(self.marker)
        g.scene().sigMouseClicked.connect(self._scene_clicked)

        self._t_grids = g.addLabel("", row=2, col=0, colspan=2)
        grids = g.addLayout(row=3, col=0, colspan=2)
        self.patch = NumberGrid(grids, 0, 0)
        self._times = grids.addLabel("×", row=0, col=1)
        self.kernel = NumberGrid(grids, 0, 2)
        self._equals = grids.addLabel("=", row=0, col=3)
        self.products = NumberGrid(grids, 0, 4)
        self._grid_titles = [grids.addLabel(t, row=1, col=c) for t, c in (("patch", 0), ("kernel", 2),
                                                                          ("products", 4))]

        self.bars_graphics = self.make_graphics()
        self.bars_plot = self.add_plot(self.bars_graphics)
        self.bars_plot.showGrid(y=True, alpha=0.3)
        self.bars_plot.setLabel("left", "contribution w·x")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush="#1e88e5")
        self.bars_plot.addItem(self.bars)

        self.equation = LiveParagraph(min_lines=2)
        self.message = self.make_note()
        self.stack = QStackedWidget()
        for w in (self.message, self.graphics, self.bars_graphics):
            self.stack.addWidget(w)
        g.ci.layout.setRowStretchFactor(1, 2)    # the maps
        g.ci.layout.setRowStretchFactor(3, 3)    # the numbers: the most space
        self.compose([STRETCH, self.unit, self.input_channel, self.back, self.play, self.forward, self.speed],
                     self.stack, [self.headline, self.equation])
        self._shapes = None
        self._overlay = None    # the window the outlines show (see _draw_window)
        self._prompt()
        self.finish_setup()

    # --- input ------------------------------------------------------------
    def show_step(self, step: ConvStep | PoolStep | LinearStep) -> None:
        """Draw this record (the answer to the last request, or a new unit chosen elsewhere)."""
        if not isinstance(step, (ConvStep, PoolStep, LinearStep)):
            raise TypeError(f"StepByStepView draws ConvStep, PoolStep or LinearStep records, not {type(step).__name__}")
        self._step = step
        self._problem = ""
        self._awaiting = False
        self._schedule()

    @property
    def step_record(self):
        return self._step

    def show_problem(self, text: str) -> None:
        """The last request could not be answered (or the layer cannot be explained): say why."""
        self._step = None
        self._problem = text
        self._awaiting = False
        self.play.setChecked(False)
        self._schedule()

    def set_units(self, count: int, unit: int, *, linear: bool = False) -> None:
        """The output channels (or, for a fully connected layer, units) the picker offers, and the one shown."""
        self.unit.blockSignals(True)
        self.unit.setPrefix("unit " if linear else "channel ")
        self.unit.setRange(0, max(0, int(count) - 1))
        self.unit.setValue(int(unit))
        self.unit.setEnabled(count > 1)
        self.unit.blockSignals(False)

    def _unit_changed(self, value: int) -> None:
        self.channel_selected.emit(int(value))

    def request_next(self, step: int = 1) -> bool:
        """Ask for the window (or unit) ``step`` after the current one; False while a request is out."""
        s = self._step
        if s is None or self._awaiting:
            return False
        self._awaiting = True
        if isinstance(s, LinearStep):
            self.channel_selected.emit((s.unit + step) % max(1, s.out_features))
        else:
            y, x = s.geometry.next_position(*s.position, step=step)
            self.position_requested.emit(int(y), int(x))
        return True

    def _toggle_play(self, on: bool) -> None:
        self.play.setText("❚❚ Pause" if on else "▶ Play")
        if on:
            self._timer.start()
        else:
            self._timer.stop()

    def _tick(self) -> None:
        self.request_next(1)

    def select_position(self, y: int, x: int) -> bool:
        """Ask for the window at output (y, x) (a click on the output map); False if there is none."""
        s = self._step
        if s is None or isinstance(s, LinearStep) or not s.geometry.contains(y, x):
            return False
        self._awaiting = True
        self.position_requested.emit(int(y), int(x))
        return True

    def _scene_clicked(self, ev) -> None:
        if not self.output_item.sceneBoundingRect().contains(ev.scenePos()):
            return
        p = self.output_item.mapFromScene(ev.scenePos())
        if self.select_position(int(np.floor(p.y())), int(np.floor(p.x()))):
            ev.accept()

    def _clear_data(self) -> None:
        self._step = None
        self._problem = ""
        self._awaiting = False
        self.play.setChecked(False)

    # --- drawing ------------------------------------------------------------
    def _prompt(self, text: str = "Pick a conv, pooling or fully connected layer and a unit (click a feature map) "
                                  "to see its value computed step by step.") -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)
        self.clear_label(self.headline)
        self.clear_label(self.equation)

    def _draw(self) -> None:
        s = self._step
        if s is None:
            self._prompt(self._problem) if self._problem else self._prompt()
            return
        if isinstance(s, LinearStep):
            self._draw_linear(s)
        else:
            self._draw_window(s)

    def _draw_window(self, s: ConvStep | PoolStep) -> None:
        conv = isinstance(s, ConvStep)
        g = s.geometry
        if conv:
            n = len(s.padded_inputs)
            self.input_channel.setRange(0, max(0, n - 1))
            self.input_channel.setEnabled(n > 1)
            k = min(self.input_channel.value(), n - 1)
            src = s.padded_inputs[k]
            label = f"input channel {s.in_channels[k]}"
        else:
            self.input_channel.setEnabled(False)
            k, src, label = 0, s.padded_input, f"input channel {s.channel}"
        src, _ = finite_float32(src)
        out, _ = finite_float32(s.output_map)
        for item, scale, data in ((self.input_item, self.input_scale, src), (self.output_item, self.output_scale, out)):
            signed = bool(data.size and data.min() < 0)
            levels = scale.steady(colormaps.display_levels(float(data.min()), float(data.max()), signed))
            item.setImage(data, autoLevels=False, levels=levels)
            scale.show(levels, signed)
        shapes = (src.shape, out.shape)
        if shapes != self._shapes:
            fit(self.input_box, src.shape)
            fit(self.output_box, out.shape)
            self._shapes = shapes

        y, x = s.position
        overlay = (g, (y, x), tuple(np.asarray(s.rows).tolist()), tuple(np.asarray(s.cols).tolist()))
        if overlay != self._overlay:
            # Only when the window moves: while training runs under a fixed window, the numbers
            # change and these outlines do not (seven setData calls were a third of a live draw).
            self._draw_overlay(s, g)
            self._overlay = overlay

        if conv:
            self.patch.set(s.patches[k], inside=s.inside)
            self.kernel.set(s.kernel[k])
            self.products.set(s.products[k], inside=s.inside)
            ch = f" (input channel {s.in_channels[k]} of {len(s.in_channels)})" if len(s.in_channels) > 1 else ""
            self.style_label(self._t_grids, f"window × kernel, element by element{ch}")
            what = f"<b>{s.layer}</b>, output channel {s.out_channel}, position (y={y}, x={x})"
            self.equation.setText(conv_equation(s))
        else:
            ring = None
            if s.winner is not None:
                ring = (int(np.flatnonzero(s.rows == s.winner[0])[0]), int(np.flatnonzero(s.cols == s.winner[1])[0]))
            self.patch.set(s.patch, inside=s.inside, ring=ring)
            self.style_label(self._t_grids, "the window" + (": the winner ringed" if ring else ""))
            what = f"<b>{s.layer}</b> ({s.mode} pooling), channel {s.channel}, position (y={y}, x={x})"
            self.equation.setText(pool_equation(s))
        for item in (self.kernel.box, self.products.box, self._times, self._equals,
                     self._grid_titles[1], self._grid_titles[2]):
            item.setVisible(conv)
        for title, text in zip(self._grid_titles, ("patch" if conv else "window", "kernel", "products")):
            self.style_label(title, text)
        stride = f"{g.stride[0]}" if g.stride[0] == g.stride[1] else f"{g.stride[0]}×{g.stride[1]}"
        pad = "/".join(str(p) for p in g.padding) if len(set(g.padding)) > 1 else str(g.padding[0])
        dil = f", dilation {g.dilation[0]}" if max(g.dilation) > 1 else ""
        self.headline.setText(f"{what}: {g.kernel[0]}×{g.kernel[1]}, stride {stride}, padding {pad}{dil}")
        padded = ", padded (dashed grey: the real input)" if any(g.padding) else ""
        self.style_label(self._t_input, f"{label}{padded}; orange: this window, dashed: the next")
        self.style_label(self._t_output, f"output map {g.output_size[0]}×{g.output_size[1]}: this position")
        self.stack.setCurrentWidget(self.graphics)

    def _draw_overlay(self, s: ConvStep | PoolStep, g) -> None:
        """The outlines on the maps: the real input, this window and its cells, the next window, the output cell."""
        top, left = g.padding[0], g.padding[1]
        rows, cols = np.asarray(s.rows) + top, np.asarray(s.cols) + left     # padded-image coordinates
        hi, wi = g.input_size
        self.real_input.setData(*rect(left, top, left + wi, top + hi))
        self.window.setData(*rect(cols[0], rows[0], cols[-1] + 1, rows[-1] + 1))
        yy, xx = np.meshgrid(rows, cols, indexing="ij")
        self.cells.setData(x=xx.ravel() + 0.5, y=yy.ravel() + 0.5)
        ny, nx = g.next_position(*s.position)
        if not g.adaptive and (ny, nx) != tuple(s.position):
            oy, ox = g.origin(ny, nx)
            span_h = (g.kernel[0] - 1) * g.dilation[0] + 1
            span_w = (g.kernel[1] - 1) * g.dilation[1] + 1
            self.next_window.setData(*rect(ox + left, oy + top, ox + left + span_w, oy + top + span_h))
        else:
            self.next_window.setData([], [])
        y, x = s.position
        self.marker.setData(*rect(x, y, x + 1, y + 1))

    def _draw_linear(self, s: LinearStep) -> None:
        self.input_channel.setEnabled(False)
        vals = [float(v) for v in s.products[s.top]]
        labels = [f"x{int(i)}" for i in s.top]
        if len(s.top) < s.in_features:
            vals.append(s.rest)
            labels.append(f"other {s.in_features - len(s.top)}")
        if s.has_bias:
            vals.append(s.bias)
            labels.append("bias")
        xs = np.arange(len(vals), dtype=float)
        brushes = [pg.mkBrush("#e53935" if v >= 0 else "#1e88e5") for v in vals]
        self.bars.setOpts(x=xs, height=vals, brushes=brushes, width=0.8)
        self.bars_plot.getAxis("bottom").setTicks([list(zip(xs, labels))])
        self.bars_plot.setTitle(f"{s.layer}, unit {s.unit}: the largest contributions w_i·x_i")
        self.headline.setText(f"<b>{s.layer}</b>, unit {s.unit} of a fully connected layer with {s.in_features} inputs")
        self.equation.setText(linear_equation(s))
        self.stack.setCurrentWidget(self.bars_graphics)

    def _restyle(self) -> None:
        pt = self.font_pt()
        for grid in (self.patch, self.kernel, self.products):
            grid.set_font_pt(pt)
        for label, text in ((self._times, "×"), (self._equals, "=")):
            label.setText(text, size=f"{2 * pt}pt", color=self.colors()[0].name())
