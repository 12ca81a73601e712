"""Presentation mode's control bar: the side panels step aside, the views get the screen.

On a projector the class looks at the views; the lecturer needs only Start/Pause, Step, the
lesson and the layer. In presentation mode the layer tree, the input and the training panel
are hidden behind this bar (its Panels button brings them back for a moment), and restored
as they were when presentation mode ends.
"""
from __future__ import annotations

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QComboBox, QLabel, QSizePolicy, QToolBar

from visualizer.core.lesson_catalog import LESSONS, LESSONS_BY_NAME

PRESENTATION_SHARES = (0.12, 0.6, 0.28)   # overview strip, the view in front, the curves
LESSON_COLUMN_SHARE = 0.28                 # of the screen's width, for a lesson's explanation


class PresentationBar(QToolBar):
    def __init__(self, window, runner):
        super().__init__("Presentation controls", window)
        self.setObjectName("toolbar_presentation")
        self.setMovable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.window, self.runner = window, runner
        self.side_docks = (window.layers_dock, window.input_dock, window.training_dock)
        self._shown_before: dict = {}
        self.addAction(window.act_run)
        self.addAction(window.act_step)
        self.addSeparator()
        self.addWidget(QLabel(" Lesson "))
        self.lesson = QComboBox()
        self.lesson.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.lesson.setMinimumContentsLength(14)
        self.lesson.addItem("(none)", "")
        self.lessons = {les.name: les for les in LESSONS}   # and the lessons opened from files
        for les in LESSONS:
            self.lesson.addItem(les.title, les.name)
        self.lesson.activated.connect(self._lesson_chosen)
        self.addWidget(self.lesson)
        self.addWidget(QLabel(" Layer "))
        self.layer = QComboBox()
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer.setMinimumContentsLength(10)
        self.layer.activated.connect(self._layer_chosen)
        self.addWidget(self.layer)
        spacer = QLabel()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.addWidget(spacer)
        self.act_panels = self.addAction("Panels")
        self.act_panels.setCheckable(True)
        self.act_panels.setToolTip("Show the layer tree, the input and the training panel")
        self.act_panels.toggled.connect(self._show_panels)
        self.addAction(window.act_presentation)
        window.addToolBar(Qt.ToolBarArea.TopToolBarArea, self)
        self.hide()
        window.session.model_changed.connect(self._fill_layers)
        window.session.layer_changed.connect(self._select_layer)
        runner.opened.connect(self._lesson_opened)

    # ---- presentation on/off ------------------------------------------------------------
    def set_active(self, on: bool) -> None:
        status = self.window.statusBar()
        if on:
            # The status bar's fields are for the lecturer's screen; on the projector the curves' line
            # says step, epoch, loss and accuracy. Its fixed-width fields in large type were wider
            # than a 1280-pixel screen.
            self._status_shown = status.isVisible()
            status.hide()
            self._state_before = self.window.saveState()      # every dock as it was, to come back to
            self._shown_before = {d: d.isVisible() for d in self.side_docks}
            self.act_panels.blockSignals(True)
            self.act_panels.setChecked(False)
            self.act_panels.blockSignals(False)
            self._show_panels(False)
            self._lesson_hint(False)
            self.show()
            self._place_lesson()
            QTimer.singleShot(0, self._share_column)
        else:
            self.hide()
            self._lesson_hint(True)
            status.setVisible(getattr(self, "_status_shown", True))
            state, self._state_before = getattr(self, "_state_before", None), None
            lesson_dock = getattr(self.window, "lesson_dock", None)
            lesson_shown = lesson_dock is not None and lesson_dock.isVisible()
            if state is not None and self.window.restoreState(state):
                if lesson_shown and not lesson_dock.isVisible():
                    lesson_dock.show()   # a lesson opened on the projector keeps its explanation
            else:
                for dock, shown in self._shown_before.items():
                    dock.setVisible(shown)
            self._shown_before = {}

    def _share_column(self) -> None:
        """On the projector the view in front gets most of the height: the strip and the curves less."""
        sizes = self.window.dock_sizes
        overview, tabs, curves = sizes.middle
        column = [d for d in (overview, tabs, curves) if d is not None and d.isVisible() and not d.isFloating()]
        if tabs not in column:
            return
        h = sum(d.height() for d in column)
        share = {overview: PRESENTATION_SHARES[0], curves: PRESENTATION_SHARES[2], tabs: PRESENTATION_SHARES[1]}
        self.window.resizeDocks(column, [int(h * share[d]) for d in column], Qt.Orientation.Vertical)

    def _place_lesson(self) -> None:
        """A lesson's explanation goes beside the views, the whole height, like a slide's text column.

        Above them (its place in the normal layout) its text, in large type, took a third of a
        720-pixel screen and the window grew past the screen to keep the plots readable.
        """
        win = self.window
        dock = getattr(win, "lesson_dock", None)
        if dock is None or dock.isHidden() or dock.isFloating():
            return
        win.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        QTimer.singleShot(0, self._lesson_width)   # once the window has the screen's width

    def _lesson_width(self) -> None:
        win, dock = self.window, self.window.lesson_dock
        if self.isVisible() and dock.isVisible() and not dock.isFloating():
            win.resizeDocks([dock], [int(LESSON_COLUMN_SHARE * win.width())], Qt.Orientation.Horizontal)

    def _lesson_hint(self, shown: bool) -> None:
        # The keyboard hint under a lesson's explanation is for the lecturer, not for the class.
        panel = getattr(self.window, "lesson_panel", None)
        if panel is not None:
            panel.hint.setVisible(shown)

    def _show_panels(self, on: bool) -> None:
        for dock in self.side_docks:
            dock.setVisible(on and self._shown_before.get(dock, True))

    # ---- the pickers --------------------------------------------------------------------
    def _fill_layers(self, model) -> None:
        self.layer.clear()
        for li in getattr(model.info, "layers", ()):
            self.layer.addItem(li.name, li.name)
        self._select_layer(self.window.session.layer)

    def _select_layer(self, name) -> None:
        i = self.layer.findData(name) if name else -1
        if i >= 0:
            self.layer.setCurrentIndex(i)

    def _layer_chosen(self, index: int) -> None:
        name = self.layer.itemData(index)
        if name:
            self.window.controller.select_layer(name)

    def _lesson_chosen(self, index: int) -> None:
        lesson = self.lessons.get(self.lesson.itemData(index))
        if lesson is not None:
            self.runner.open(lesson)

    def _lesson_opened(self, lesson) -> None:
        # A lesson from a file may carry a built-in one's name: it is listed beside it, not over it.
        key = lesson.name if LESSONS_BY_NAME.get(lesson.name) is lesson else f"file:{lesson.name}"
        self.lessons[key] = lesson
        i = self.lesson.findData(key)
        if i < 0:               # a lesson from a file
            self.lesson.addItem(lesson.title, key)
            i = self.lesson.count() - 1
        self.lesson.setCurrentIndex(i)
        if self.isVisible():          # a lesson chosen on the projector: its text beside the views
            QTimer.singleShot(0, self._place_lesson)
