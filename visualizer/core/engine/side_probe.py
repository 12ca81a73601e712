"""Answers capture requests from a copy of the model while a slow training step runs.

With ResNet-18 a CPU step takes seconds; a layer, channel or input change must still
show within 200 ms. The engine's thread is inside the step, so a second thread probes a
private copy of the model (eval mode, its own hooks), whose weights the engine refreshes
between steps. The copy is never trained and the live model is never touched from here.
"""
from __future__ import annotations

import copy
import threading
import time
from typing import Any, Callable

from ..model_bundle import ModelBundle

SIDE_PROBE_MIN_PARAMS = 1_000_000  # below this a training step is quick: the trainer answers itself
SIDE_PROBE_AFTER_S = 0.15          # a step running longer than this is "slow"
SIDE_PROBE_REFRESH_S = 1.0         # copy the trained weights into the viewing copy at most this often


class SideProbe:
    """``mailbox``: ``take()`` -> the newest unanswered CaptureRequest or None, ``done()`` once answered;
    ``emit(name, payload)``: where the probe snapshot (or a notice) goes."""

    def __init__(self, bundle: ModelBundle, data, control, mailbox, emit: Callable[[str, Any], None]):
        import torch  # noqa: F401 - the copy below is a torch model; fail here, not in the thread
        self._data = data
        self._control = control
        self._mailbox = mailbox
        self._emit = emit
        self._lock = threading.Lock()      # the copy is either being probed or being refreshed
        model = copy.deepcopy(bundle.model).cpu().eval()  # made before any hook exists on the original
        self._bundle = ModelBundle(model=model, input_shape=bundle.input_shape, class_names=bundle.class_names,
                                   mean=bundle.mean, std=bundle.std, arch=bundle.arch,
                                   arch_options=dict(bundle.arch_options), source=bundle.source)
        self._inspector = None
        self._last_refresh = time.monotonic()
        self.step_ended = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="side-probe", daemon=True)
        self._thread.start()

    def after_step(self, live) -> None:
        """The engine's thread, between two steps."""
        import torch
        now = time.monotonic()
        self.step_ended = now
        if now - self._last_refresh < SIDE_PROBE_REFRESH_S:
            return
        with self._lock:
            with torch.no_grad():
                self._bundle.model.load_state_dict(live.state_dict())
        self._last_refresh = time.monotonic()
        self.step_ended = self._last_refresh

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self._inspector is not None:
            self._inspector.close()
            self._inspector = None

    def _loop(self) -> None:
        from ..inspector import Inspector
        from ..training import probe_input
        while not self._stop.wait(0.02):
            if self._control.paused or time.monotonic() - self.step_ended < SIDE_PROBE_AFTER_S:
                continue  # quick steps, or paused: the trainer itself answers requests
            request = self._mailbox.take()
            if request is None:
                continue
            try:
                with self._lock:
                    if self._inspector is None:
                        self._inspector = Inspector(self._bundle)
                    image01, label = probe_input(request, self._data, self._bundle.input_shape)
                    snap = self._inspector.probe(request, image01, label)
            except Exception as exc:  # noqa: BLE001 - a failed look must not end training
                self._mailbox.done()
                self._emit("notice", f"Could not update the views during the step: {exc}")
                continue
            self._emit("probe_ready", snap)
