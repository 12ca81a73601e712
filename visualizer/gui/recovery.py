"""The window's side of a worker that hangs or dies, and of runs a crash interrupted.

* An unresponsive engine (its heartbeat says it is stuck, or it sends nothing: see
  ``core/engine/process.py``) gets a non-modal message naming what it was doing and the
  model's file, with a button that ends it at once (SIGTERM, then SIGKILL); the controller
  then restarts it as after a crash. The message closes itself if the engine recovers.
* An interrupted run (autosaved, neither completed nor stopped, its engine gone: the worker
  or the whole app crashed) is offered for resuming once the window has its first model,
  and again after every restart of the worker. Resume continues it where its last autosave
  left it; Dismiss stops offering it (the checkpoint stays in the autosave folder).

Both questions go through replaceable callables (``ask_resume``, ``show_unresponsive``) so
that tests answer them without a dialog, as the controller's trust and model questions do.
"""
from __future__ import annotations

import logging
from typing import Callable

from PyQt6.QtCore import QObject
from PyQt6.QtWidgets import QMessageBox

from visualizer.core.engine import autosave
from visualizer.core.engine.autosave import AutosaveRecord
from visualizer.core.engine.messages import Unresponsive
from visualizer.core.user_dirs import autosave_dir

log = logging.getLogger(__name__)
RESUME, DISMISS, LATER = "resume", "dismiss", "later"


class Recovery(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.controller = window.controller
        self.folder = autosave_dir()
        self.ask_resume: Callable[[AutosaveRecord, Callable[[str], None]], None] = self._resume_dialog
        self.show_unresponsive: Callable[[Unresponsive], None] = self._unresponsive_dialog
        self._box: QMessageBox | None = None
        self._offered: set[str] = set()     # run ids already asked about in this session
        c = self.controller
        c.engine_unresponsive.connect(lambda why: self.show_unresponsive(why))
        c.engine_responsive.connect(self._close_box)
        c.engine_restarted.connect(self._offer_after_next_model)
        self._offer_after_next_model()

    # ==== interrupted runs ==========================================================
    def _offer_after_next_model(self) -> None:
        """Ask once the engine has a model: a resume queued before it would be replaced by the sample."""
        session = self.controller.session

        def once(_model) -> None:
            session.model_changed.disconnect(once)
            self.offer_interrupted()

        session.model_changed.connect(once)

    def interrupted(self) -> list[AutosaveRecord]:
        try:
            return [r for r in autosave.interrupted_runs(self.folder) if r.run_id not in self._offered]
        except OSError as e:   # an unreadable data folder must not stop the window
            log.warning("could not look for interrupted runs in %s: %s", self.folder, e)
            return []

    def offer_interrupted(self) -> None:
        """Offer the newest interrupted run (one question at a time; older ones come next start)."""
        runs = self.interrupted()
        if not runs:
            return
        record = runs[0]
        self._offered.add(record.run_id)
        self.ask_resume(record, lambda answer: self.answer(record, answer))

    def answer(self, record: AutosaveRecord, answer: str) -> None:
        if answer == RESUME:
            self.controller.resume_run(record)
        elif answer == DISMISS:
            try:
                autosave.mark(self.folder, record, autosave.DISMISSED)
            except OSError as e:
                self.window.show_message("warning", f"Could not record that the run is dismissed: {e}")

    def _resume_dialog(self, record: AutosaveRecord, reply: Callable[[str], None]) -> None:
        runs_code = "\n\nResuming runs your model file again." if ".py:" in (record.model or "") else ""
        box = self.window._message_box(
            "warning", "A training run was interrupted (the app or its training process stopped unexpectedly):"
                       f"\n\n{record.describe()}\n\nResume it where it was autosaved?" + runs_code,
            QMessageBox.StandardButton.NoButton)
        resume = box.addButton("Resume training", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
        dismiss = box.addButton("Dismiss", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(resume)
        box.buttonClicked.connect(lambda b: reply(RESUME if b is resume else DISMISS if b is dismiss else LATER))
        box.open()

    # ==== unresponsive engine ==========================================================
    def _unresponsive_dialog(self, why: Unresponsive) -> None:
        self._close_box()
        c = self.controller
        if c.worker.can_be_stopped:
            text = why.describe() + "\n\nStop the training process? Training since the last autosave is lost; " \
                                    "the app restarts it at once."
            box = self.window._message_box("warning", text, QMessageBox.StandardButton.NoButton)
            stop = box.addButton("Stop the training process", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton("Wait", QMessageBox.ButtonRole.RejectRole)
            box.setDefaultButton(stop)
            box.buttonClicked.connect(lambda b: b is stop and self.stop_engine())
        else:   # --thread-worker: the engine is a thread of this process; nothing can end it but quitting
            box = self.window._message_box("warning", why.describe() + "\n\nIt runs inside the window's process "
                                           "(--thread-worker): only quitting the app stops it.",
                                           QMessageBox.StandardButton.NoButton)
            quit_ = box.addButton("Quit", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton("Wait", QMessageBox.ButtonRole.RejectRole)
            box.buttonClicked.connect(lambda b: b is quit_ and self.window.close())
        box.finished.connect(lambda _r, b=box: self._forget(b))
        self._box = box
        box.open()

    def stop_engine(self) -> None:
        if self.controller.stop_engine():
            self.window.statusBar().showMessage("Stopping the training process…", 5000)

    def _forget(self, box) -> None:
        if self._box is box:
            self._box = None

    def _close_box(self) -> None:
        box, self._box = self._box, None
        if box is not None:
            box.close()   # made with WA_DeleteOnClose
