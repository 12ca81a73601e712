"""Coalesce bursts of updates into at most N repaints per second, and pace the views.

Snapshots may arrive at any rate (or in a burst after the GUI was busy); only
the latest matters, so a view stores it and asks the throttle for a repaint.
A single-shot QTimer runs the callback once, no sooner than 1/max_hz after the
previous run, however many requests came in between.

When it is due, a throttle does not draw at once: it queues on the shared
``FramePacer``, which runs one view's redraw at a time, ``GAP_MS`` apart.
Every view gets a snapshot in the same controller tick; drawn together, all
of them (and then Qt's paint of all of them, one update later) made one
20-100 ms block in which the GUI could not answer input. Paced, each view's
draw and its paint are separate blocks of a few milliseconds, and the event
loop runs in between.
"""
from __future__ import annotations

import collections
import time
from typing import Callable

from PyQt6 import sip
from PyQt6.QtCore import QObject, Qt, QTimer

# Qt paints a window about 5 ms after the first update() (its update-request
# timer): with 10 ms between views, one view's paint is done before the next
# view draws, with room for the event loop in between (6 ms measured worse:
# a paint and the next draw ran back to back). 8 views take ~80 ms per round.
GAP_MS = 10


class FramePacer(QObject):
    """Runs queued throttles' callbacks one per event-loop turn, at least ``gap_ms`` apart."""

    _instance: "FramePacer | None" = None

    @classmethod
    def shared(cls) -> "FramePacer":
        if cls._instance is None or sip.isdeleted(cls._instance):
            cls._instance = cls()
        return cls._instance

    def __init__(self, gap_ms: int = GAP_MS):
        super().__init__()
        self.gap_ms = gap_ms
        self._queue: collections.deque[Throttle] = collections.deque()
        self._last_end = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._run_next)

    def submit(self, throttle: "Throttle") -> None:
        if throttle not in self._queue:
            self._queue.append(throttle)
        self._kick()

    def withdraw(self, throttle: "Throttle") -> None:
        try:
            self._queue.remove(throttle)
        except ValueError:
            pass

    def queued(self, throttle: "Throttle") -> bool:
        return throttle in self._queue

    def _kick(self) -> None:
        if self._queue and not self._timer.isActive():
            since = (time.monotonic() - self._last_end) * 1000.0
            self._timer.start(max(0, int(round(self.gap_ms - since))))

    def _run_next(self) -> None:
        try:
            while self._queue:
                throttle = self._queue.popleft()
                if sip.isdeleted(throttle):
                    continue   # its view is gone
                drew = True
                try:
                    drew = throttle._fire() is not False
                finally:
                    if drew:
                        self._last_end = time.monotonic()
                if drew:
                    break   # a hidden view that drew nothing does not use up a slot
        finally:
            self._kick()   # one view's failing draw must not stop the others'


class Throttle(QObject):
    def __init__(self, callback: Callable[[], None], max_hz: float = 30.0, parent: QObject | None = None,
                 pacer: FramePacer | None = None):
        super().__init__(parent)
        self._callback = callback
        self._min_interval = 1.0 / max_hz
        self._last = time.monotonic() - 1.0
        self._pacer = pacer
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._due)

    @property
    def pacer(self) -> FramePacer:
        if self._pacer is None:
            self._pacer = FramePacer.shared()
        return self._pacer

    @property
    def pending(self) -> bool:
        return self._timer.isActive() or self.pacer.queued(self)

    def request(self) -> None:
        if self.pending:
            return  # already scheduled: the callback will see the latest data
        wait = self._min_interval - (time.monotonic() - self._last)
        self._timer.start(max(0, int(wait * 1000)))

    def flush(self) -> None:
        """Run a pending callback now (export, headless render, tests)."""
        if self.pending:
            self.cancel()
            self._fire()

    def cancel(self) -> None:
        self._timer.stop()
        self.pacer.withdraw(self)

    def _due(self) -> None:
        self.pacer.submit(self)

    def _fire(self):
        self._last = time.monotonic()
        return self._callback()   # False: nothing was drawn
