"""The main window's runs: File › Open run, the replay timeline, compare, and File › Attach to live run.

A mixin of ``MainWindow``. While a run or a live recorder is shown, the session's model and
snapshots come from it (``Controller.show_external``) and the views draw them as they draw
the engine's; the engine stays as it was. "Back to live", opening a model or starting
training returns to the engine.
"""
from __future__ import annotations

import os

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QDialog, QDialogButtonBox, QDockWidget, QFileDialog, QFormLayout, QLineEdit

from visualizer.core.errors import LoadError
from visualizer.core.record.stream import StreamError

from .live_attach import LiveAttach
from .replay import RunReplay
from .widgets.timeline import Timeline

RUN_FILTER = "Runs (*.cnnviz);;All files (*)"
RUN_SUFFIX = ".cnnviz"


class WindowRuns:
    def _build_runs(self) -> None:
        self.replay = RunReplay(self)
        self.live = LiveAttach(self)
        self.timeline = Timeline()
        self.timeline_dock = QDockWidget("Run", self)
        self.timeline_dock.setObjectName("dock_timeline")
        self.timeline_dock.setWidget(self.timeline)
        self.timeline_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                                       | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.timeline_dock)
        curves_dock = self.view_docks.get(self.curves) if self.curves is not None else None
        if curves_dock is not None:   # under the loss curves, the whole width of the views
            self.splitDockWidget(curves_dock, self.timeline_dock, Qt.Orientation.Vertical)
        self.timeline_dock.hide()
        r, t, c = self.replay, self.timeline, self.controller
        r.snapshot_ready.connect(c.show_external_snapshot)
        r.position_changed.connect(t.show_position)
        r.playing_changed.connect(t.set_playing)
        r.epochs_ready.connect(self._run_epochs)
        r.grown.connect(self._run_grown)
        t.seek_requested.connect(r.seek)
        t.step_requested.connect(r.step_by)
        t.play_requested.connect(r.toggle_play)
        t.epoch_requested.connect(r.seek_epoch)
        t.pin_requested.connect(self.pin_shown)
        t.compare_requested.connect(c.set_compare)
        t.close_requested.connect(c.end_external)
        self.live.snapshot_ready.connect(c.show_external_snapshot)
        self.live.closed.connect(self._live_closed)
        self.session.layer_changed.connect(self._live_layer)
        c.external_ended.connect(self._leave_external)

    # ---- runs ----------------------------------------------------------------------
    def open_run_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open run", "", RUN_FILTER)
        if path:
            self.open_run(path)

    def open_run(self, path: str) -> bool:
        """Show the recorded run ``path`` with the replay timeline under the views."""
        self.live.close()
        try:
            model = self.replay.open(path)       # a bad file changes nothing
        except LoadError as exc:
            self.show_message("error", f"Could not open the run.\n\n{exc}")
            return False
        self.controller.show_external(model)
        self._epochs_shown = 0
        self._run_epochs(self.replay.epochs())
        self.replay.seek(self.replay.step)       # the model's views are set up: show its snapshot
        self.settings.add_recent(os.fspath(path))
        self._run_grown()
        self.timeline_dock.setWindowTitle(f"Run: {os.path.basename(path)}")
        self.timeline_dock.show()
        self.statusBar().showMessage(f"Replaying {path}: drag the timeline, Alt+Left/Right step, "
                                     "Alt+Space plays", 10000)
        return True

    def _run_grown(self) -> None:
        r = self.replay
        self.timeline.set_run(os.path.basename(r.path or ""), r.steps(), r.snapshot_steps(), r.epochs())
        self.timeline.show_position(r.step)

    def _run_epochs(self, epochs) -> None:
        """The run's epoch ends the views have not had yet (a run being written adds more)."""
        if not self.controller.showing_external:
            return
        for ev in epochs[getattr(self, "_epochs_shown", 0):]:
            self.session.add_epoch(ev)
        self._epochs_shown = len(epochs)

    def pin_shown(self) -> None:
        """Pin what the views show (a run's step, a live step, the open model's probe) as A."""
        self.controller.pin()
        shown = self.session.latest_training
        self.timeline.set_pinned(shown.step if shown is not None and self.controller.pinned is not None else None)
        if self.controller.pinned is not None:
            self.statusBar().showMessage("Pinned as A: open or scrub to B, then View > Compare", 8000)

    # ---- live recorders ------------------------------------------------------------
    def attach_dialog(self) -> None:
        dlg = QDialog(self)
        dlg.setWindowTitle("Attach to live run")
        address, token = QLineEdit(self.settings.get("attach/address", "127.0.0.1:7000", str)), QLineEdit()
        token.setPlaceholderText("the token the recorder printed")
        form = QFormLayout(dlg)
        form.addRow("Address (host:port)", address)
        form.addRow("Token", token)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(dlg.accept)
        buttons.rejected.connect(dlg.reject)
        form.addRow(buttons)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.settings.set("attach/address", address.text())
            self.attach(address.text(), token.text())

    def attach(self, address: str, token: str) -> bool:
        """Show the snapshots of the recorder serving at ``address``."""
        self.replay.close()
        try:
            model = self.live.connect_to(address, token)
        except StreamError as exc:
            self.show_message("error", f"Could not attach.\n\n{exc}")
            return False
        self.controller.show_external(model)
        self.timeline_dock.hide()
        self.live.request(self.session.layer)
        self.statusBar().showMessage(f"Attached to {address}", 10000)
        return True

    def _live_layer(self, name) -> None:
        if self.live.active:
            self.live.request(name)

    def _live_closed(self, reason: str) -> None:
        if reason:
            self.show_message("warning", f"The live run ended: {reason}\n\nThe last snapshot stays on screen.")

    def _leave_external(self) -> None:
        self.replay.close()
        self.live.close()
        self.timeline_dock.hide()
