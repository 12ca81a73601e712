"""Coalesce bursts of updates into at most N repaints per second.

Snapshots may arrive at any rate (or in a burst after the GUI was busy); only
the latest matters, so a view stores it and asks the throttle for a repaint.
A single-shot QTimer runs the callback once, no sooner than 1/max_hz after the
previous run, however many requests came in between.
"""
from __future__ import annotations

import time
from typing import Callable

from PyQt6.QtCore import QObject, QTimer


class Throttle(QObject):
    def __init__(self, callback: Callable[[], None], max_hz: float = 30.0, parent: QObject | None = None):
        super().__init__(parent)
        self._callback = callback
        self._min_interval = 1.0 / max_hz
        self._last = time.monotonic() - 1.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._fire)

    @property
    def pending(self) -> bool:
        return self._timer.isActive()

    def request(self) -> None:
        if self._timer.isActive():
            return  # already scheduled: the callback will see the latest data
        wait = self._min_interval - (time.monotonic() - self._last)
        self._timer.start(max(0, int(wait * 1000)))

    def flush(self) -> None:
        """Run a pending callback now (export, headless render, tests)."""
        if self._timer.isActive():
            self._timer.stop()
            self._fire()

    def cancel(self) -> None:
        self._timer.stop()

    def _fire(self) -> None:
        self._last = time.monotonic()
        self._callback()
