"""The window's one rate limiter: which view draws when, and when everything new has been drawn.

Snapshots may arrive at any rate (or in a burst after the GUI was busy); only the latest
matters, so a view stores it and asks the pacer for a frame. The pacer then

- draws each asking view at most ``max_hz`` times a second (a burst of requests is one draw);
- draws one view per event-loop turn, ``gap_ms`` apart: drawn together, every view (and
  then Qt's paint of all of them, one update later) made one 20-100 ms block in which the
  window could not answer input; paced, each view's draw and its paint are separate blocks
  of a few milliseconds with the event loop running in between. A hidden view draws
  nothing and uses no slot (it catches up when shown);
- tells whoever waits (``when_drawn``) once every view that asked has drawn: the controller
  acknowledges a snapshot to the engine only then, so the engine never runs ahead of what
  the window has drawn, and memory stays bounded however slow the window is.
"""
from __future__ import annotations

import collections
import sys
import time
from typing import Callable, Protocol

from PyQt6 import sip
from PyQt6.QtCore import QObject, Qt, QTimer

# Qt paints a window about 5 ms after the first update() (its update-request timer): with
# 10 ms between views, one view's paint is done before the next view draws, with room for
# the event loop in between (6 ms measured worse: a paint and the next draw ran back to back).
GAP_MS = 10
MAX_HZ = 30.0


class Drawable(Protocol):
    def draw_frame(self) -> bool:
        """Draw the latest data if visible; False when nothing was drawn (hidden, nothing new)."""


class FramePacer(QObject):
    """See the module docstring. One per application (``shared()``); tests may make their own."""

    _instance: FramePacer | None = None

    @classmethod
    def shared(cls) -> FramePacer:
        if cls._instance is None or sip.isdeleted(cls._instance):
            cls._instance = cls()
        return cls._instance

    def __init__(self, gap_ms: int = GAP_MS, max_hz: float = MAX_HZ):
        super().__init__()
        self.gap_ms = gap_ms
        self.min_interval = 1.0 / max_hz
        self._queue: collections.OrderedDict[int, Drawable] = collections.OrderedDict()
        self._last_draw: dict[int, float] = {}
        self._last_end = 0.0
        self._waiters: list[Callable[[], None]] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._run_next)

    # ---- asking ----------------------------------------------------------------
    def submit(self, view: Drawable) -> None:
        """``view`` has something new to draw; it draws once, however often it asks before that."""
        self._queue.setdefault(id(view), view)
        self._kick()

    def withdraw(self, view: Drawable) -> None:
        self._queue.pop(id(view), None)
        self._notify_if_idle()

    def pending(self, view: Drawable) -> bool:
        return id(view) in self._queue

    def when_drawn(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once every view that has asked so far has drawn (at once if none is waiting)."""
        self._waiters.append(callback)
        self._notify_if_idle()

    # ---- drawing ---------------------------------------------------------------
    def _due_in(self, key: int) -> float:
        return self._last_draw.get(key, -1e9) + self.min_interval - time.monotonic()

    def _kick(self) -> None:
        if not self._queue or self._timer.isActive():
            return
        gap = self.gap_ms / 1000 - (time.monotonic() - self._last_end)
        soonest = min(self._due_in(k) for k in self._queue)
        self._timer.start(max(0, int(round(1000 * max(gap, soonest)))))

    def _run_next(self) -> None:
        try:
            for key in list(self._queue):
                if self._due_in(key) > 0:
                    continue
                view = self._queue.pop(key)
                if sip.isdeleted(view):
                    continue   # its window is gone
                drew = False
                try:
                    drew = view.draw_frame() is not False
                except Exception:  # noqa: BLE001 - one view's failing draw must not stop the others or the acks
                    sys.excepthook(*sys.exc_info())   # the app shows it (a few times at most)
                if drew:
                    now = time.monotonic()
                    self._last_draw[key] = now
                    self._last_end = now
                    break   # one drawing view per event-loop turn; a hidden one takes no slot
        finally:
            self._notify_if_idle()
            self._kick()

    def _notify_if_idle(self) -> None:
        if self._queue or not self._waiters:
            return
        waiters, self._waiters = self._waiters, []
        for callback in waiters:
            try:
                callback()
            except Exception:  # noqa: BLE001 - an acknowledgement that fails must not stop the next ones
                sys.excepthook(*sys.exc_info())
