"""The Health view's life in the window: live during training, "Check now" on request, flags on the tree.

- During training the engine judges every snapshot's gradient figures and the measured
  training batches (``core/engine/live_health.py``): its ``health_report`` goes to the view
  and to the layer tree's marks; each ``health_alerts`` (flags that have just appeared, each
  once) is written in the status bar.
- "Check now" asks the engine for the ``health`` analysis: every layer measured on 256
  samples of the open data (one backward pass and a throw-away optimizer step; the model is
  left as it was). The answer replaces the view's report and the marks, and the status bar
  names what was flagged, or says that nothing was.

The latest report wins, live or checked. Answers to an older request (the model changed
since) are dropped.
"""
from __future__ import annotations

import logging

from PyQt6.QtCore import QObject

from visualizer.core.health import FLAGS, HealthReport

from .widgets.health_marks import HealthMarks

log = logging.getLogger(__name__)
STATUS_MS = 15_000        # a flag stays in the status bar this long (unless another message replaces it)
CHECK_TEXT = "Check now"


class HealthPresenter(QObject):
    def __init__(self, window, view):
        super().__init__(window)
        self.window = window
        self.view = view
        self.controller = window.controller
        self.marks = HealthMarks(window.layer_tree)
        self._request: int | None = None
        c = self.controller
        view.check_requested.connect(self.check)
        c.analysis_ready.connect(self._on_analysis)
        c.analysis_progress.connect(self._on_progress)
        c.health_report.connect(self._on_live_report)
        c.health_alerts.connect(self._on_alerts)
        window.session.model_changed.connect(self._on_model)

    # ---- checking on request ---------------------------------------------------------
    def check(self) -> None:
        if self._request is not None:
            return
        self.controller.end_external()   # a replayed run was shown: the check is of the open model
        if self.window.session.model is None:
            return
        self._request = self.controller.request_analysis("health")
        self._set_checking(True)

    def _set_checking(self, on: bool, text: str = "Checking…") -> None:
        b = self.view.check_button
        b.setEnabled(not on and self._available())
        b.setText(text if on else CHECK_TEXT)

    def _on_progress(self, p) -> None:
        if p.kind == "health" and p.request_id == self._request:
            self._set_checking(True, f"Checking… {p.done}/{p.total}")

    def _on_analysis(self, result) -> None:
        if result.kind != "health" or result.request_id != self._request:
            return
        self._request = None
        self._set_checking(False)
        if result.error:
            self.window.show_message("warning", f"The health check could not run.\n\n{result.error}")
            return
        self._show(result.record)
        self._status(checked_summary(result.record))

    # ---- live ------------------------------------------------------------------------
    def _on_live_report(self, report: HealthReport) -> None:
        self._show(report)

    def _on_alerts(self, alerts) -> None:
        if not alerts:
            return
        for a in alerts:
            log.info("health: %s", a.message)
        first = min(alerts, key=lambda a: urgency(a.flag))   # the most urgent flag speaks
        # The layer, the flag and its figure first: a narrow status bar cuts the end of the line.
        more = f" (+{len(alerts) - 1} more flags: see the Health view)" if len(alerts) > 1 else ""
        step = f" (step {first.step})" if first.step is not None else ""
        self._status(f"{first.message}{step}{more}")

    # ---- shared ----------------------------------------------------------------------
    def _show(self, report: HealthReport) -> None:
        self.view.set_report(report)
        self.marks.show(report)

    def _status(self, text: str) -> None:
        self.window.statusBar().showMessage(text, STATUS_MS)

    def _available(self) -> bool:
        model = self.window.session.model
        return model is not None and not getattr(model, "training_refusal", "")

    def _on_model(self, model) -> None:
        self.marks.forget()          # the tree's items are new
        self._request = None         # an answer still coming is about the model before
        reason = getattr(model, "training_refusal", "")
        self._set_checking(False)
        self.view.check_button.setToolTip(
            "The health check needs the PyTorch model (hooks and gradients): not available for an ONNX model"
            if reason else "Measure every layer on a batch of 256 samples of the data")


def urgency(flag: str) -> int:
    """Position in FLAGS (most urgent first): a dead layer before the vanishing gradients it causes upstream."""
    return FLAGS.index(flag) if flag in FLAGS else len(FLAGS)


def checked_summary(report: HealthReport) -> str:
    """The status bar's line after Check now: what was flagged (most urgent first), or that nothing was."""
    flagged = sorted(report.flagged(), key=lambda r: urgency(r.flags[0]))   # stable: layer order within a flag
    if not flagged:
        return f"Health check: no flags, all {len(report.layers)} layers within their thresholds " \
               f"({report.samples} samples)."
    first = flagged[0]
    names = ", ".join(f"{r.name} ({', '.join(r.flags)})" for r in flagged)
    return f"Health check: {len(flagged)} of {len(report.layers)} layers flagged: {names}. " \
           f"{first.name}: {first.advice[0]}"
