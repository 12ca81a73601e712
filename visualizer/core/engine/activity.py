"""What the engine's thread is doing right now: the content of the process's heartbeat (no torch).

The engine's thread says what it begins (a command, a training run), ticks at every sign
of progress (a training step, an evaluation batch, an event) and says when it is idle; the
heartbeat thread reads it twice a second (``pulse()``). The viewer can then tell apart a
long but healthy job (ticks keep coming) from one stuck in a user's ``forward`` or import
(no tick for longer than the activity's patience), and both from a frozen process (no
heartbeat at all). Plain attribute writes under a lock: cheap enough for every step.
"""
from __future__ import annotations

import threading
import time

from .messages import Pulse

COMMAND_PATIENCE_S = 30.0    # a model opened, built, probed or saved: seconds, normally
SLOW_COMMAND_PATIENCE_S = 180.0  # a data set folder or a big checkpoint read from a slow disk
TRAINING_PATIENCE_S = 20.0   # between two training steps (or evaluation batches) ...
STEP_FACTOR = 10.0           # ... or ten times the longest gap seen so far in this run, if longer


class Activity:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._label = "starting"
        self._file: str | None = None
        self._patience = SLOW_COMMAND_PATIENCE_S   # start-up imports torch
        self._last_tick: float | None = time.monotonic()
        self._longest_gap = 0.0

    def begin(self, label: str, model_file: str | None = None, patience_s: float = COMMAND_PATIENCE_S) -> None:
        with self._lock:
            self._label, self._file, self._patience = label, model_file, float(patience_s)
            self._last_tick = time.monotonic()
            self._longest_gap = 0.0

    def tick(self) -> None:
        """Progress: a step, an evaluation batch or an event; the busy clock starts again."""
        now = time.monotonic()
        with self._lock:
            if self._last_tick is not None:
                self._longest_gap = max(self._longest_gap, now - self._last_tick)
            self._last_tick = now

    def idle(self) -> None:
        with self._lock:
            self._label, self._file, self._last_tick = "idle", None, None

    @property
    def model_file(self) -> str | None:
        return self._file

    def pulse(self) -> Pulse:
        with self._lock:
            busy = 0.0 if self._last_tick is None else time.monotonic() - self._last_tick
            patience = max(self._patience, STEP_FACTOR * self._longest_gap)
            return Pulse(self._label, self._file, busy, patience)
