"""What looking does while a run trains: the live health monitor and live top patches, for one run.

The engine makes one ``LiveLooking`` per run, after the Trainer, and calls ``after_event``
with each training event and ``close`` when the run ends. It installs the health
monitor's batch observer on the trainer (the probe calls it on the measured steps), and
reads the viewer's wishes (``Engine.live_health``, ``Engine.live_patches_layer``) at each
event, so a wish changes what is accumulated from the next step on.

Failing to look never stops training: an error here is reported once as a notice and
that kind of looking stays off for the rest of the run.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from ..snapshot import Diverged, Finished, TrainingSnapshot
from .messages import describe_error

log = logging.getLogger(__name__)


class LiveLooking:
    def __init__(self, engine, trainer, emit: Callable[[str, Any], None]):
        self._engine = engine
        self._trainer = trainer
        self._emit = emit
        self.health = None
        self.patches = None
        if engine.live_health:
            self._try("the live health check", self._start_health)
        self._try("live top patches", self._start_patches)

    def _start_health(self) -> None:
        from .live_health import LiveHealth
        self.health = LiveHealth(self._trainer, self._emit)
        self._trainer.batch_observer = self.health.observer

    def _start_patches(self) -> None:
        from .live_patches import LivePatches
        self.patches = LivePatches(self._trainer, self._emit)

    def _try(self, what: str, fn, *args) -> bool:
        try:
            fn(*args)
            return True
        except Exception as exc:  # looking failed; training goes on without it
            log.exception("%s failed", what)
            self._emit("notice", f"{what[0].upper()}{what[1:]} is off for this run ({describe_error(exc)}).")
            return False

    def after_event(self, event) -> None:
        """The engine's thread, after ``event`` went to the viewer."""
        if isinstance(event, (Finished, Diverged)):
            self.close()
            return
        if self.patches is not None and not self._try("live top patches", self.patches.want,
                                                      self._engine.live_patches_layer):
            self._drop_patches()
        if not isinstance(event, TrainingSnapshot):
            return
        if self.health is not None and not self._try("the live health check", self.health.after_snapshot, event):
            self._drop_health()
        if self.patches is not None and not self._try("live top patches", self.patches.after_snapshot, event):
            self._drop_patches()

    def _drop_health(self) -> None:
        self.health = None
        self._trainer.batch_observer = None

    def _drop_patches(self) -> None:
        patches, self.patches = self.patches, None
        if patches is not None:
            patches.want(None)   # removes its hook

    def close(self) -> None:
        """The run is over (or ended by an error): the last figures, and every hook removed. Idempotent."""
        health, patches = self.health, self.patches
        self._drop_health()
        self.patches = None
        if health is not None:
            self._try("the live health check", health.finish)
        if patches is not None and not self._try("live top patches", patches.finish):
            patches.want(None)
