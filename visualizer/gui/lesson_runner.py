"""Opens a lesson in the window: the model, the data, the training settings, the views, the panel text.

Everything goes through the window's usual paths: the training panel's values (so the
panel shows what the lesson set and a run uses it), and the controller's commands for the
model and the data, which the engine runs in order. A lesson opened while training first
stops the run and goes on once it has stopped, so an old run's end never lands on the new one.

Order of the engine commands: the data set first, then the model, so the model the lesson
builds is shaped for the lesson's data and is the last one to arrive; when the open model
cannot be refitted to the new data (a user's own class), a built-in model is built first.
Once the lesson's model has arrived (the same architecture, options and data), its layer is
selected and its defining block highlighted in the layer tree; a later model that still
matches (the same architecture chosen again) gets them again.
"""
from __future__ import annotations

import fnmatch
import logging
import os

from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal

from visualizer.core.architectures.catalog import ARCHITECTURES
from visualizer.core.engine.messages import LoadedModel
from visualizer.core.lessons import KEEP, SAMPLE, Lesson, Variant
from visualizer.core.resources import SAMPLE_MODEL_NAME

from .session import RUNNING, STOPPED

log = logging.getLogger(__name__)

CURVES_SHARE = 0.42    # of the views' column for the curves in a lesson about them (default: 0.28)


def find_view(window, key: str):
    """The window's view that lessons call ``key`` (its ``lesson_key``), or None."""
    return next((v for v in window.views if v.lesson_key == key), None)


def view_key(view) -> str | None:
    return getattr(view, "lesson_key", None)


def highlighted_layers(info, patterns) -> list[str]:
    """Layer names matching any pattern: fnmatch on the name, or "kind:<kind>"."""
    out = []
    for layer in getattr(info, "layers", ()):
        for p in patterns:
            hit = (layer.kind == p[5:]) if p.startswith("kind:") else fnmatch.fnmatchcase(layer.name, p)
            if hit:
                out.append(layer.name)
                break
    return out


class LessonRunner(QObject):
    opened = pyqtSignal(object)      # the Lesson, once its settings are in place (its model may be on its way)

    def __init__(self, window, panel, dock):
        super().__init__(window)
        self.window, self.panel, self.dock = window, panel, dock
        self.controller, self.session = window.controller, window.session
        self.lesson: Lesson | None = None
        self.variant: Variant | None = None
        self._after_stop: tuple[Lesson, Variant | None, bool] | None = None
        self._expect: dict | None = None       # what the lesson's model looks like once it has arrived
        self.pending = False                   # its model is on its way (the commands are queued)
        self._model_before = None              # the model open when they were sent
        self.session.model_changed.connect(self._on_model)
        self.session.state_changed.connect(self._on_state)
        panel.variant_chosen.connect(self.apply_variant)

    # ---- entry points ------------------------------------------------------------------
    def open(self, lesson: Lesson, *, start: bool = False) -> None:
        self.apply(lesson, None, start=start)

    def apply_variant(self, title: str) -> None:
        """A variant button: applied to the open lesson; a running run goes on with the change, a
        paused one stays paused (stopped, with the change made, until Start)."""
        if self.lesson is None:
            return
        try:
            variant = self.lesson.variant(title)
        except KeyError:
            return
        self.apply(self.lesson, variant, start=self.session.training_state == RUNNING)

    def apply(self, lesson: Lesson, variant: Variant | None, *, start: bool = False) -> None:
        if self.session.training_state != STOPPED:
            # Go on once the run has ended: its Finished must not land on the lesson's run.
            self._after_stop = (lesson, variant, start)
            self.controller.stop()
            return
        self._apply(lesson, variant, start)

    def _on_state(self, state: str) -> None:
        if state == STOPPED and self._after_stop is not None:
            lesson, variant, start = self._after_stop
            self._after_stop = None
            # After the STOPPED signal has reached everyone: the old run's end (status line, run
            # ended) is told in this same emission and must not land on the lesson's new run.
            QTimer.singleShot(0, lambda: self._apply(lesson, variant, start))

    # ---- applying -----------------------------------------------------------------------
    def _apply(self, lesson: Lesson, variant: Variant | None, start: bool) -> None:
        w, c = self.window, self.controller
        self.lesson, self.variant = lesson, variant
        panel = w.training_panel
        panel.blockSignals(True)     # the lesson's values are not the user's choices: nothing rebuilds yet
        try:
            ignored = panel.set_values(lesson.panel_values(variant))
        finally:
            panel.blockSignals(False)
        if ignored:
            w.show_message("warning", f"The lesson '{lesson.title}' set some values this panel cannot show:\n\n"
                           + "\n".join(f"• {i}" for i in ignored))
        spec = lesson.dataset
        limit = lesson.data_limit(variant) or c.default_limit(spec)
        data = c.data
        needs_data = data is None or data.spec != spec or c.dataset_limit(spec) != limit
        needs_model = variant is None or bool(variant.options or variant.train or variant.augment
                                               or variant.limit != KEEP)
        if needs_model or needs_data:
            current = self.session.model
            self.pending, self._model_before = True, current
            if needs_data and current is not None and current.arch not in ARCHITECTURES:
                self._issue_model(lesson, variant)   # a built-in model can be refitted to the new data
            if needs_data:
                c.set_dataset(spec, limit=limit, augment=w.augment())
            self._issue_model(lesson, variant)
        else:
            self._select_layer(lesson, variant)
        self._show(lesson, variant)
        log.info("lesson %s%s opened", lesson.name, f" ({variant.title})" if variant else "")
        self.opened.emit(lesson)
        if start:
            # Queued behind the model and data commands: the engine trains the lesson's model.
            c.start_training(w.training_config())

    def _issue_model(self, lesson: Lesson, variant: Variant | None) -> None:
        if lesson.uses_sample(variant):
            self._expect = {"arch": "lenet5", "sample": True, "dataset": lesson.dataset}
            self.controller.open_sample()
        else:
            arch, options = lesson.arch(variant), lesson.model_options(variant)
            self._expect = {"arch": arch, "options": options, "dataset": lesson.dataset}
            self.controller.rebuild(arch, options)

    def matches(self, model: LoadedModel) -> bool:
        """Is ``model`` the open lesson's model?"""
        e = self._expect
        if e is None or model.arch != e["arch"] or model.dataset != e["dataset"]:
            return False
        if e.get("sample"):
            return bool(model.source) and os.path.basename(model.source) == SAMPLE_MODEL_NAME
        have = dict(model.arch_options)
        return model.source is None and all(have.get(k) == v for k, v in e["options"].items())

    def _on_model(self, model: LoadedModel) -> None:
        if self.lesson is not None and self.matches(model):
            if model is not self._model_before:
                self.pending = False
            # After the session has finished announcing the model (it selects its default layer last).
            QTimer.singleShot(0, self._model_arrived)

    def _model_arrived(self) -> None:
        model, lesson = self.session.model, self.lesson
        if model is None or lesson is None or not self.matches(model):
            return
        self._select_layer(lesson, self.variant)
        self.window.layer_tree.highlight(highlighted_layers(model.info, lesson.highlight))

    def _select_layer(self, lesson: Lesson, variant: Variant | None) -> None:
        layer = lesson.selected_layer(variant)
        if layer and layer in self.session.layer_names():
            self.controller.select_layer(layer)

    def _show(self, lesson: Lesson, variant: Variant | None) -> None:
        """The views, the filter display and the explanation the lesson asks for."""
        w = self.window
        view = find_view(w, lesson.front)
        if view is not None:
            dock = w.view_docks[view]
            dock.show()
            dock.raise_()
        filters = find_view(w, "filters")
        if filters is not None:
            if lesson.filter_mode:
                filters.set_mode(lesson.filter_mode)
            if lesson.filter_scale:
                filters.set_scale(lesson.filter_scale)
        w.dock_sizes.set_curves_share(CURVES_SHARE if lesson.curves else None)
        self.panel.show_lesson(lesson, variant.title if variant else None)
        self.dock.setWindowTitle(f"Lesson: {lesson.title}")
        self.dock.show()
        QTimer.singleShot(0, self.fit_panel)

    def fit_panel(self) -> None:
        """The explanation as tall as its text (Qt would give it a share of the column), the side panels
        as wide as they were (showing a dock makes Qt spread the window's width afresh)."""
        w, dock = self.window, self.dock
        if not dock.isVisible() or dock.isFloating():
            return
        title = dock.height() - dock.widget().height()
        w.resizeDocks([dock], [self.panel.needed_height() + title], Qt.Orientation.Vertical)
        if w.dock_sizes.side_widths:
            w.dock_sizes.set_side_widths(*w.dock_sizes.side_widths)

    # ---- the current state as a lesson (Save lesson…) ----------------------------------
    def current_model(self) -> tuple[str | None, str]:
        """(the lesson's ``model`` for what is open, or None; a sentence when something is not kept)."""
        model = self.session.model
        if model is None:
            return None, "No model is open."
        if model.source and os.path.basename(model.source) == SAMPLE_MODEL_NAME:
            return SAMPLE, ""
        if model.arch in ARCHITECTURES:
            kept = "" if model.source is None else (f" The lesson builds a fresh {model.arch}: the weights of "
                                                    f"{os.path.basename(model.source)} are not part of it.")
            return model.arch, kept
        return None, ("A lesson sets up a built-in architecture or the sample model; the open model comes from "
                      f"{model.source or model.arch}, which a lesson cannot open.")

    def current_front(self) -> str:
        tabbed = [v for v in self.window.views if view_key(v) is not None]
        visible = [v for v in tabbed if v.isVisible() and not v.visibleRegion().isEmpty()]
        for v in (self.window.current_view, *visible):
            key = view_key(v) if v is not None else None
            if key is not None:
                return key
        return "feature_maps"
