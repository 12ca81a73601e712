"""The health of a model while it trains: judged from what each snapshot already measured.

Each training snapshot carries every weighted layer's gradient norm, weight norm and
update/weight ratio (``GradientStats``): judging them costs nothing more. Dead and
saturated units need whole batches, not the one probe sample, so the probe's batch
observer (``measure.BatchActivationObserver``) sums every activation layer's output on the
steps the probe is armed anyway (those a snapshot is due on); the monitor collects those
sums until 256 samples are in before it calls a unit dead.

What goes to the viewer: ``health_alerts`` (the flags that have just appeared, each once:
for the status bar and the layer tree) and ``health_report`` (the monitor's whole report,
at most ``REPORT_INTERVAL_S`` apart, and at once with an alert: for the Health view).
Lives in the engine's thread, beside the Trainer whose probe it observes.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from ..health import HealthMonitor
from ..snapshot import TrainingSnapshot

REPORT_INTERVAL_S = 0.25   # the live report is a few rows of numbers; four a second is plenty to watch


class LiveHealth:
    """A HealthMonitor fed from one run's snapshots and measured training batches."""

    def __init__(self, trainer, emit: Callable[[str, Any], None], *, report_interval: float = REPORT_INTERVAL_S):
        from ..health.measure import BatchActivationObserver, health_rows
        rows = health_rows(trainer.inspector)
        self.monitor = HealthMonitor(rows)
        self.observer = BatchActivationObserver.for_rows(rows)
        self._emit = emit
        self._interval = float(report_interval)
        self._last_step = -1
        self._last_report = float("-inf")

    def after_snapshot(self, snap: TrainingSnapshot) -> None:
        """Judge what the step behind ``snap`` measured; say what is new."""
        if snap.step < self._last_step:
            # The weights were reset mid-run (step 0 again): old figures and flags are about other weights.
            self.monitor.reset()
            self.observer.take()
        if snap.step == self._last_step:
            return   # a paused trainer answering a new capture request: nothing new was measured
        self._last_step = snap.step
        alerts = self.monitor.feed_snapshot(snap) + self.monitor.feed_activations(snap.step, self.observer.take())
        now = time.monotonic()
        if alerts or now - self._last_report >= self._interval:
            self._last_report = now
            self._emit("health_report", self.monitor.report)
        if alerts:
            self._emit("health_alerts", alerts)

    def finish(self) -> None:
        """The run ended: the last figures, so the view shows where it stopped."""
        if self._last_step >= 0:
            self._emit("health_report", self.monitor.report)
