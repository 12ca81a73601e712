"""The main window: composes docks, menus, shortcuts and the status bar.

It computes nothing: user actions go to the Controller, which owns the worker;
session changes come back as signals and are only displayed here. Every dock
and toolbar has an objectName so that saveState/restoreState can persist the
user's arrangement between runs.
"""
from __future__ import annotations

import importlib
import logging
import os
import zlib

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QGuiApplication
from PyQt6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QProgressBar, QToolBar, QWidget

from visualizer.core.engine.messages import LoadedModel, describe_model
from visualizer.core.snapshot import OUT_OF_MEMORY, TrainingSnapshot

from .controller import Controller
from .dock_sizes import DockSizes
from .session import PAUSED, RUNNING, STOPPED
from .settings import Settings
from .widgets.live_text import LiveText
from .window_appearance import WindowAppearance
from .window_files import WindowFiles
from .window_looking import attach_looking
from .window_menus import WindowMenus
from .window_runs import WindowRuns

log = logging.getLogger(__name__)

# (module, class) of every live view, in tab order; the first is shown on start.
VIEW_CLASSES = (
    ("visualizer.gui.views.feature_maps", "FeatureMapView"),
    ("visualizer.gui.views.filters", "FilterView"),
    ("visualizer.gui.views.pooling", "PoolingView"),
    ("visualizer.gui.views.activations", "ActivationView"),
    ("visualizer.gui.views.gradients", "GradientView"),
    ("visualizer.gui.views.probabilities", "ProbabilityView"),
    ("visualizer.gui.views.step_by_step", "StepByStepView"),
    ("visualizer.gui.views.cam", "CamView"),
    ("visualizer.gui.views.health", "HealthView"),
    ("visualizer.gui.views.top_patches", "TopPatchesView"),
)
OVERVIEW_CLASS = ("visualizer.gui.views.overview", "OverviewStripView")
CURVES_CLASS = ("visualizer.gui.views.curves", "CurvesView")
FIRST_RUN_EPOCHS = 30
SMALL_SCREEN = (1440, 800)   # at or below this the window takes the whole screen


def _load_class(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:  # a view not written yet must not stop the app
        log.warning("view %s.%s unavailable: %s", module, name, exc)
        return None


class MainWindow(WindowMenus, WindowFiles, WindowRuns, WindowAppearance, QMainWindow):
    def __init__(self, settings: Settings | None = None, *, controller: Controller | None = None,
                 restore: bool = True):
        super().__init__()
        self.setWindowTitle("CNN Visualizer")
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.settings = settings or Settings()
        self.controller = controller or Controller(self.settings, self)
        if self.controller.parent() is None:
            self.controller.setParent(self)   # its session (and every connection to it) ends with the window
        self.session = self.controller.session
        self.views: list = []
        self.view_docks: dict[object, QDockWidget] = {}
        self.current_view = None
        self.last_message: tuple[str, str] | None = None
        self._messages: list[QMessageBox] = []
        self._presentation = False
        self._theme_before_presentation: str | None = None
        self._closing = False

        self._build_docks()
        self._build_runs()
        self._build_status_bar()
        self._build_actions()
        self._build_menus()
        self._wire()
        self.looking = attach_looking(self)   # Health, Top patches, inspect-only models (window_looking.py)
        self._install_dialog_hooks()
        self.dock_sizes = DockSizes(self, self.layers_dock, self.input_dock, self.training_dock,
                                    self._middle_docks)
        from .window_teaching import install_teaching
        install_teaching(self)   # lessons, the start flow, step by step and CAM requests, presentation bar
        self._fit_to_screen()
        if restore:
            self._restore()
        from .recovery import Recovery
        self.recovery = Recovery(self)   # a hung or dead worker, and runs a crash interrupted

    # ==== construction ============================================================
    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _fit_to_screen(self) -> None:
        """Most of the screen (a projector's 1280x720 as much as a laptop's), never beyond it."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            self.resize(1400, 900)
            return
        avail = screen.availableGeometry()
        if avail.width() <= SMALL_SCREEN[0] or avail.height() <= SMALL_SCREEN[1]:
            # A projector's 1280x720: every pixel is needed (a margin would only cost the views).
            self.setGeometry(avail)
            return
        self.resize(int(avail.width() * 0.94), int(avail.height() * 0.92))

    def _build_docks(self) -> None:
        from .widgets.input_panel import InputPanel
        from .widgets.layer_tree import LayerTree
        from .widgets.training_panel import TrainingPanel

        # The views share the centre as tabs; the centre widget itself stays empty
        # so that every view is a dock the user can move, float or close.
        # Hidden, it takes no space: the docks around it share all of it (a visible one
        # capped at size 0 made Qt give every spare pixel to the side panels instead).
        # Qt then moves the side panels' separators a few pixels at every re-layout of the
        # window: texts that change every frame are LiveText, which never asks for one.
        placeholder = QWidget()
        placeholder.hide()
        self.setCentralWidget(placeholder)

        self.layer_tree = LayerTree()
        self.layers_dock = self._dock("Layers", "dock_layers", self.layer_tree, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.input_panel = InputPanel()
        self.input_dock = self._dock("Input", "dock_input", self.input_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.splitDockWidget(self.layers_dock, self.input_dock, Qt.Orientation.Vertical)

        self.training_panel = TrainingPanel()   # it scrolls its own form under its buttons
        self.training_dock = self._dock("Training", "dock_training", self.training_panel,
                                        Qt.DockWidgetArea.RightDockWidgetArea)

        # Left and right panels run the full height; the views fill the middle column:
        # overview strip on top, the view tabs under it, the curves at the bottom.
        for corner, area in ((Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea),
                             (Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea),
                             (Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea),
                             (Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)):
            self.setCorner(corner, area)
        self.overview = self.curves = None
        overview_dock = None
        cls = _load_class(*OVERVIEW_CLASS)
        if cls is not None:
            self.overview = cls()
            overview_dock = self._dock(self.overview.title, "dock_view_overview", self.overview,
                                       Qt.DockWidgetArea.TopDockWidgetArea)
            self._add_view(self.overview, overview_dock)
        first = None
        for module, name in VIEW_CLASSES:
            cls = _load_class(module, name)
            if cls is None:
                continue
            view = cls()
            # A tab shows the view's short name where it has one (a row of eight must fit a projector).
            dock = self._dock(getattr(view, "tab_title", view.title), "dock_view_" + name, view,
                              Qt.DockWidgetArea.TopDockWidgetArea)
            self._add_view(view, dock)
            if first is None:
                first = dock
                if overview_dock is not None:
                    self.splitDockWidget(overview_dock, dock, Qt.Orientation.Vertical)
            else:
                self.tabifyDockWidget(first, dock)
        cls = _load_class(*CURVES_CLASS)
        curves_dock = None
        if cls is not None:
            self.curves = cls()
            curves_dock = self._dock(self.curves.title, "dock_view_curves", self.curves,
                                     Qt.DockWidgetArea.BottomDockWidgetArea)
            self._add_view(self.curves, curves_dock)
        if first is not None:
            first.raise_()
            self.current_view = first.widget()
        self._middle_docks = (overview_dock, first, curves_dock)

    def resizeDocks(self, docks, sizes, orientation) -> None:
        sizes_keeper = getattr(self, "dock_sizes", None)
        if sizes_keeper is not None:
            sizes_keeper.explicit_resize()   # kept, unlike the few pixels Qt's own re-layouts shift them
        super().resizeDocks(docks, sizes, orientation)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.dock_sizes.window_resized(event)   # a bigger window widens the views, not the panels

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.dock_sizes.window_shown()

    def _add_view(self, view, dock: QDockWidget) -> None:
        self.views.append(view)
        self.view_docks[view] = dock
        self.controller.add_view(view)
        # The view on top of its tab group is the one exports and copy act on.
        dock.visibilityChanged.connect(lambda visible, v=view: visible and self._set_current_view(v))

    def _set_current_view(self, view) -> None:
        self.current_view = view

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        # Fields that change every frame are LiveText, each as wide as its longest value:
        # a QLabel would re-lay out the whole window on every change.
        self.status_model = QLabel("No model")
        self.status_epoch = LiveText("Epoch –", width_for="Epoch 9999")
        self.status_step = LiveText("Step –", width_for="Step 9,999,999")
        self.status_loss = LiveText("Loss –", width_for="Loss 0.00000")
        self.status_lr = LiveText("LR –", width_for="LR 0.000001")
        self.status_rate = LiveText("– samples/s", width_for="99,999 samples/s")
        self.status_prediction = LiveText("", width_for="Prediction: automobile (100%)")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        bar.addWidget(self.status_model, 1)
        for w in (self.status_prediction, self.status_epoch, self.status_step, self.status_loss,
                  self.status_lr, self.status_rate, self.progress):
            bar.addPermanentWidget(w)

    def _wire(self) -> None:
        c, s, tp, ip = self.controller, self.session, self.training_panel, self.input_panel
        c.config_provider = self.training_config
        c.augment_provider = self.augment
        c.message.connect(self.show_message)
        c.notice.connect(self._show_notice)
        c.data_changed.connect(self._on_data)
        c.run_ended.connect(self._on_run_ended)
        s.model_changed.connect(self._on_model)
        s.layer_changed.connect(self._on_layer)
        s.state_changed.connect(self._on_state)
        s.probe_changed.connect(self._on_probe)
        s.training_changed.connect(self._on_training)
        self.layer_tree.layer_selected.connect(c.select_layer)

        tp.start.connect(self._start_from_panel)
        tp.pause.connect(c.pause)
        tp.resume.connect(c.resume)
        tp.step.connect(c.step)
        tp.stop.connect(c.stop)
        tp.reset.connect(c.reset_weights)
        tp.save.connect(self.save_dialog)
        tp.lr_changed.connect(self._on_lr_changed)
        tp.speed_changed.connect(self._on_speed_changed)
        tp.model_options_changed.connect(self._on_model_options)
        tp.dataset_browse.connect(self.browse_dataset)
        keys = {"start": "Space", "pause": "Space", "step": "Ctrl+Right", "stop": "Ctrl+.",
                "reset": "Ctrl+Shift+R", "save": "Ctrl+S"}
        tp.set_shortcuts(keys)

        ip.sample_requested.connect(c.use_sample)
        ip.input_chosen.connect(c.use_probe_input)
        ip.image_open_requested.connect(self.open_image_dialog)

    # Slots of the window itself, not lambdas: Qt drops them when the window is deleted, and the
    # controller (tests keep it) may outlive it.
    def _show_notice(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _start_from_panel(self) -> None:
        self.start_flow.request()

    def toggle_run(self) -> None:
        """Space: Start when stopped (through the start flow: it may ask first), else pause or resume."""
        if self.session.training_state == STOPPED:
            self.start_flow.request()
        else:
            self.controller.toggle_run()

    def _install_dialog_hooks(self) -> None:
        from . import dialogs

        def ask_trust(req) -> tuple[bool, bool]:
            dlg = dialogs.TrustDialog(req.info or req, self)
            log.info("asking whether to trust %s", req.path)   # scripts and tests wait for this line
            accepted = dlg.exec() == dlg.DialogCode.Accepted
            return accepted, accepted and dlg.remember()

        def ask_model_spec(path: str, info):
            if path.endswith(".py"):
                dlg = dialogs.ArchitectureDialog(None, self)
                dlg.select_user_model(path, "")
                if dlg.exec() != dlg.DialogCode.Accepted:
                    return None
                value = dlg.result_value()
                return {"path": value["model_spec"]} if "model_spec" in value else None
            return dialogs.ArchitectureDialog.ask(None, self)

        def offer_safetensors(source: str):
            target = os.path.splitext(source)[0] + ".safetensors"
            answer = QMessageBox.question(
                self, "Save a safe copy?",
                f"The model loaded. Save its weights as\n{target}\nso it opens next time without running code?",
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            return target if answer == QMessageBox.StandardButton.Save else None

        c = self.controller
        c.ask_trust, c.ask_model_spec, c.offer_safetensors = ask_trust, ask_model_spec, offer_safetensors

    # ==== persistence ============================================================
    def _restore(self) -> None:
        s = self.settings
        self._default_state = self.saveState()
        geom, state = s.geometry(), s.window_state()
        if geom is not None:
            self.restoreGeometry(geom)
        if state is not None:
            # A layout saved by a version with other docks is not restored (restoreState refuses
            # a different version): Qt would put the docks it does not know anywhere, and a new
            # view stacked itself over the others instead of joining their tabs.
            self.dock_sizes.restored = bool(self.restoreState(state, self.layout_version()))
        # First run: enough epochs on the built-in digits to watch it learn (3 take a second).
        values = s.last_options() or {"epochs": FIRST_RUN_EPOCHS}
        ignored = list(s.problems)
        if values:
            self.training_panel.blockSignals(True)  # restoring must not rebuild the model
            try:
                ignored += [f"saved training setting {what}" for what in self.training_panel.set_values(values)]
            finally:
                self.training_panel.blockSignals(False)
        if ignored:   # said once, at start; the defaults are in place and the app runs on
            log.warning("settings ignored: %s", "; ".join(ignored))
            self.show_message("warning", "Some saved settings could not be used; the defaults are used "
                                         "instead:\n\n" + "\n".join(f"• {w}" for w in ignored))
        theme = s.theme if s.theme in self.theme_actions else "dark"
        self.theme_actions[theme].setChecked(True)
        self.device_actions[s.get("training/device", "cpu", str) if
                            s.get("training/device", "cpu", str) in self.device_actions else "cpu"].setChecked(True)

    def save_settings(self) -> None:
        s = self.settings
        if self._presentation:
            self.set_presentation(False)
        s.save_window(self.saveGeometry(), self.saveState(self.layout_version()))
        s.set_last_options(self.training_panel.values())
        s.set("training/device", self.device())
        s.sync()

    def layout_version(self) -> int:
        """A number that changes when the set of docks and tool bars does (saveState's version)."""
        names = sorted(w.objectName() for w in self.findChildren((QDockWidget, QToolBar)) if w.parent() is self)
        return zlib.crc32(" ".join(names).encode()) & 0x7FFFFFFF

    def reset_layout(self) -> None:
        if getattr(self, "_default_state", None) is not None:
            self.restoreState(self._default_state)
            self.dock_sizes.apply_defaults_later()

    # ==== training ===============================================================
    def device(self) -> str:
        return next((n for n, a in self.device_actions.items() if a.isChecked()), "cpu")

    def training_config(self):
        from dataclasses import replace

        return replace(self.training_panel.config(), device=self.device())

    def augment(self):
        from visualizer.core.config import Augment
        return Augment(**self.training_panel.augment())

    def _on_lr_changed(self, lr: float) -> None:
        if self.session.training_state != STOPPED:
            self.controller.set_lr(lr)

    def _on_speed_changed(self, steps_per_sec: float) -> None:
        if self.session.training_state != STOPPED:
            self.controller.set_speed(steps_per_sec)

    def _on_model_options(self, options: dict) -> None:
        self.controller.configure(options, augment=self.augment())

    def browse_dataset(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Dataset folder (image folders, IDX or CIFAR-10)")
        if path:
            self.training_panel.add_dataset(path, os.path.basename(path) or path)

    # ==== session → display =======================================================
    def _on_model(self, model: LoadedModel) -> None:
        self.layer_tree.set_model_info(model.info)
        self.status_model.setText(describe(model))
        self._sync_panel_to(model)
        self._fit_pad()
        self.setWindowTitle(f"CNN Visualizer – {os.path.basename(model.source) if model.source else model.arch}")

    def _sync_panel_to(self, model: LoadedModel) -> None:
        """Name the opened model in the panel, with its architecture and options (without rebuilding it)."""
        from .open_model_text import open_model_text
        title, note = open_model_text(model)
        options = {k: v for k, v in model.arch_options if k in ("activation", "pooling", "batchnorm",
                                                                 "dropout", "width")}
        self.training_panel.show_open_model(model.arch, title, note, options)

    def _fit_pad(self) -> None:
        """Draw at the training data's own resolution and framing, so a drawing is preprocessed
        like the training images were (the UCI digits are 8x8 filling their box, MNIST 28x28
        with the digit in a 20x20 box); the controller then resizes it as the dataset was."""
        from visualizer.gui.widgets.mnist_preprocess import MNIST_BOX_FRACTION
        data, model = self.controller.data, self.session.model
        native = getattr(data, "native_shape", (0, 0, 0)) if data is not None else (0, 0, 0)
        if native[1] > 0:
            _, h, w = native
        elif model is not None:
            _, h, w = model.input_shape
        else:
            return
        pad = self.input_panel.pad
        pad.set_output_size(h, w)
        pad.set_box_fraction(1.0 if min(h, w) < 16 else MNIST_BOX_FRACTION)

    def _on_data(self, data) -> None:
        self.input_panel.set_dataset(data.class_names, data.labels)
        self._fit_pad()
        self.training_panel.blockSignals(True)  # showing the dataset in use is not a new choice
        try:
            self.training_panel.add_dataset(data.spec, None if data.spec == data.name else data.name)
        finally:
            self.training_panel.blockSignals(False)

    def _on_layer(self, name) -> None:
        if name and self.layer_tree.current_layer() != name:
            self.layer_tree.blockSignals(True)
            try:
                self.layer_tree.select(name)
            finally:
                self.layer_tree.blockSignals(False)

    def _on_state(self, state: str) -> None:
        self.training_panel.set_state(state)
        self.act_run.setText({STOPPED: "&Start training", RUNNING: "&Pause training",
                              PAUSED: "&Resume training"}[state])
        self.act_stop.setEnabled(state != STOPPED)

    def _on_probe(self, probe) -> None:
        self.input_panel.show_input(probe.input_image)
        if probe.probabilities.size:
            k = probe.predicted
            name = probe.class_names[k] if 0 <= k < len(probe.class_names) else str(k)
            self.status_prediction.setText(f"Prediction: {name} ({100 * float(probe.probabilities[k]):.0f}%)")

    def _on_training(self, snap: TrainingSnapshot) -> None:
        self.status_epoch.setText(f"Epoch {snap.epoch + 1}")
        self.status_step.setText(f"Step {snap.step}")
        self.status_loss.setText(f"Loss {snap.loss:.4f}")
        self.status_lr.setText(f"LR {snap.lr:.3g}")
        self.status_rate.setText(f"{snap.samples_per_sec:,.0f} samples/s")
        self.progress.setRange(0, max(1, snap.total_steps))
        self.progress.setValue(min(snap.step, snap.total_steps))

    def _on_run_ended(self, ev) -> None:
        # Snapshots come at most N per second: the last steps of a run may have none.
        completed = getattr(ev, "reason", "") == "completed"
        self.status_step.setText(f"Step {ev.step}")
        # Finished counts epochs done when complete, the 0-based running epoch otherwise.
        self.status_epoch.setText(f"Epoch {ev.epoch if completed else ev.epoch + 1}")
        if completed:
            self.progress.setValue(self.progress.maximum())
        if getattr(ev, "reason", "") == OUT_OF_MEMORY:
            self._offer_smaller_batch(ev.batch_size)

    def _offer_smaller_batch(self, batch: int) -> None:
        """A step ran out of memory: say so, and offer to train again at half the batch size."""
        smaller = batch // 2
        text = f"Training ran out of memory at batch size {batch}."
        if smaller < 1:
            self.show_message("error", text + " Try a smaller model or a smaller input size.")
            return
        box = self._message_box("error", text + f"\n\nTrain again with batch size {smaller}? "
                                              "(A smaller model or input size also needs less memory.)",
                                QMessageBox.StandardButton.Cancel)
        retry = box.addButton(f"Train with batch size {smaller}", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(retry)

        def retry_smaller():
            self.training_panel.batch_size.setValue(smaller)
            self.controller.start_training()
        retry.clicked.connect(retry_smaller)
        box.open()

    def move_layer(self, delta: int) -> None:
        names = self.session.layer_names()
        if not names:
            return
        cur = self.session.layer
        i = names.index(cur) if cur in names else -1
        self.controller.select_layer(names[max(0, min(len(names) - 1, i + delta))])

    # ==== messages ================================================================
    def show_message(self, level: str, text: str) -> None:
        """Non-modal, so a worker failure never blocks the event loop (or a test)."""
        self._message_box(level, text).open()

    def _message_box(self, level: str, text: str,
                     buttons=QMessageBox.StandardButton.Ok) -> QMessageBox:
        """A message box (not yet open) that closes itself; the text also goes to the status bar."""
        self.last_message = (level, text)
        self.statusBar().showMessage(text.splitlines()[0] if text else "", 10000)
        icon = {"error": QMessageBox.Icon.Critical, "warning": QMessageBox.Icon.Warning}.get(
            level, QMessageBox.Icon.Information)
        box = QMessageBox(icon, "CNN Visualizer", text, buttons, self)
        # Messages quote files and what is in them (titles, names): text, never HTML.
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _r, b=box: self._messages.remove(b) if b in self._messages else None)
        self._messages.append(box)
        return box

    # ==== lifecycle ==============================================================
    def start(self, path: str | None = None) -> None:
        """Start the worker and open ``path`` or the sample model."""
        self.controller.start()
        self.controller.open_sample()
        if path and path.lower().endswith(".cnnviz"):
            # A run is shown instead of the engine's model: once that model is there, or its
            # arrival would take the window back to it.
            def open_run_once(_model) -> None:
                self.session.model_changed.disconnect(open_run_once)
                self.open_path(path)
            self.session.model_changed.connect(open_run_once)
        elif path:
            # After the sample (same queue): a bad file leaves a usable window behind.
            QTimer.singleShot(0, lambda: self.open_path(path))

    def closeEvent(self, event) -> None:
        # Closing mid-training is normal: stop the trainer and join the thread before
        # Qt destroys it (a running QThread being destroyed aborts the process).
        if not self._closing:
            self._closing = True
            try:
                self.save_settings()
            except Exception:
                log.exception("could not save settings")
            self.controller.shutdown()
            for box in list(self._messages):
                box.close()
        super().closeEvent(event)


def describe(model: LoadedModel) -> str:
    src = f" from {os.path.basename(model.source)}" if model.source else ""
    data = f" · dataset {model.dataset}" if model.dataset else ""
    return describe_model(model) + src + data
