"""The window's teaching parts, wired in one place: lessons and their explanation, the start flow,
the step-by-step and class-activation-map views' requests, and presentation mode's control bar.

Each part is its own module; this only creates them and connects them to the window, so that
``main_window.py`` stays about composition.
"""
from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtWidgets import QDockWidget, QFrame, QScrollArea, QTabBar

from visualizer.core.lesson_catalog import WATCH_IT_LEARN

from .explain_link import ExplainLink
from .explanation_panel import ExplanationPanel
from .lesson_runner import LessonRunner, find_view
from .lessons_menu import LessonsMenu
from .presentation_bar import PresentationBar
from .start_flow import StartFlow


def install_teaching(w) -> None:
    panel = ExplanationPanel()
    dock = QDockWidget("Lesson", w)
    dock.setObjectName("dock_lesson")
    # Above the views the dock is as tall as the text (LessonRunner.fit_panel); beside them on a
    # projector a long text scrolls instead of making the window taller than the screen.
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(panel)
    dock.setWidget(scroll)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                     | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                     | QDockWidget.DockWidgetFeature.DockWidgetClosable)
    w.addDockWidget(Qt.DockWidgetArea.TopDockWidgetArea, dock)
    overview = w._middle_docks[0] if w._middle_docks else None
    if overview is not None:
        # Between the overview strip and the views it talks about (moving an existing dock instead
        # re-flows the whole middle column).
        w.splitDockWidget(overview, dock, Qt.Orientation.Vertical)
    dock.hide()                       # until a lesson is opened
    w.lesson_panel, w.lesson_dock = panel, dock

    w.lesson_runner = LessonRunner(w, panel, dock)
    w.lessons_menu = LessonsMenu(w, w.lesson_runner, dock)
    w.start_flow = StartFlow(w, lambda start: w.lesson_runner.open(WATCH_IT_LEARN, start=start))
    w.start_flow.add_menu(w.training_menu)
    w.act_reset.triggered.connect(w.start_flow.weights_reset)
    w.training_panel.reset.connect(w.start_flow.weights_reset)

    step, cam = find_view(w, "step_by_step"), find_view(w, "cam")
    w.explain_link = ExplainLink(w, step, cam, find_view(w, "feature_maps")) if step and cam else None
    w.presentation_bar = PresentationBar(w, w.lesson_runner)
    w.whole_tab_titles = WholeTabTitles(w)
    w.tab_catch_up = TabCatchUp(w)


class TabCatchUp(QObject):
    """A view whose tab is brought to the front draws what arrived while it was behind.

    QMainWindow moves the tabs behind the front one out of the window instead of hiding them, so a
    view gets no showEvent when its tab is chosen; its dock says so (visibilityChanged).
    """

    def __init__(self, window):
        super().__init__(window)
        self._views = {}
        for view, dock in window.view_docks.items():
            self._views[dock] = view
            dock.visibilityChanged.connect(self._changed)

    def _changed(self, visible: bool) -> None:
        view = self._views.get(self.sender())
        if visible and view is not None:
            QTimer.singleShot(0, view.catch_up)     # once the dock is in place


class WholeTabTitles(QObject):
    """The dock tabs' titles whole, never "Fi…": scroll arrows if a row of tabs does not fit.

    QMainWindow makes its tab bars itself, when it lays the docks out; each new one is fixed here.
    """

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() in (QEvent.Type.ChildAdded, QEvent.Type.Show):
            QTimer.singleShot(0, self.apply)
        return False

    def apply(self) -> None:
        for bar in self.window.findChildren(QTabBar):
            if bar.elideMode() != Qt.TextElideMode.ElideNone:
                bar.setElideMode(Qt.TextElideMode.ElideNone)
                bar.setUsesScrollButtons(True)
