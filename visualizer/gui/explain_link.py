"""Keeps the step-by-step and class-activation-map views asking the engine about what is shown.

Both views draw records the engine computes on request (``controller.request_analysis``:
"step" and "cam", ``core/engine/analysis.py``). This asks again whenever what they explain
changes: the layer, the channel or position (a click on a feature map, play/step, the
view's own pickers), and the input or the weights (every new probe snapshot: while training
and while drawing on the pad), so the numbers follow the model as it learns.

One request per view is in flight at a time; a newer wish waits and replaces older ones, so
a slow engine is never flooded. Re-asking for a new snapshot happens only while the view is
visible and at most ``REASK_MS`` apart; a hidden view catches up when it is shown.
"""
from __future__ import annotations

import time

from PyQt6.QtCore import QObject, QTimer

from visualizer.core.explain.records import grad_cam_layers

from .views.cam import PREDICTED

REASK_MS = 200           # new snapshots re-ask at most 5 times a second per view
LOST_S = 15.0            # an answer this late is taken as lost (the engine restarted): ask again
STEP_KINDS = {"conv": "conv", "depthwise_conv": "conv", "pool": "pool", "linear": "linear"}


class Asker:
    """One view's analysis requests: at most one in flight, the newest wish next."""

    def __init__(self, controller, kind: str, deliver, fail):
        self.controller, self.kind, self.deliver, self.fail = controller, kind, deliver, fail
        self.in_flight: int | None = None
        self.sent_at = 0.0
        self.wanted: dict | None = None
        self.asked = 0                      # requests sent (tests count them)
        # Owned by the controller: it never fires after the window (and its controller) are gone.
        self._retry_timer = QTimer(controller)
        self._retry_timer.setSingleShot(True)
        self._retry_timer.timeout.connect(self._send)

    def ask(self, params: dict) -> None:
        self.wanted = dict(params)
        self._send()

    def reset(self) -> None:
        self.in_flight, self.wanted = None, None

    def _send(self) -> None:
        if self.wanted is None:
            return
        waited = time.monotonic() - self.sent_at
        if self.in_flight is not None and waited < LOST_S:
            if not self._retry_timer.isActive():
                # If the answer is lost (the engine restarted meanwhile), ask again then: a paused
                # window sends no new wish that would.
                self._retry_timer.start(int(1000 * (LOST_S - waited)) + 10)
            return
        params, self.wanted = self.wanted, None
        self.in_flight = self.controller.request_analysis(self.kind, **params)
        self.sent_at = time.monotonic()
        self.asked += 1

    def answered(self, result) -> bool:
        if result.request_id != self.in_flight:
            return False
        self.in_flight = None
        if result.error:
            self.fail(result.error)
        else:
            self.deliver(result.record)
        self._send()
        return True


class ExplainLink(QObject):
    def __init__(self, window, step_view, cam_view, feature_view=None):
        super().__init__(window)
        self.window, self.step_view, self.cam_view = window, step_view, cam_view
        c, s = window.controller, window.session
        self.controller, self.session = c, s
        # What the step view explains: layer, output channel (or unit), position.
        self.layer: str | None = None
        self.unit = 0
        self.y = self.x = 0
        self.cam_params: dict = {}
        self.step = Asker(c, "step", step_view.show_step, step_view.show_problem)
        self.cam = Asker(c, "cam", cam_view.show_cam, cam_view.show_problem)
        self._stale = {self.step: True, self.cam: True}   # a newer input or snapshot than the one shown
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REASK_MS)
        self._timer.timeout.connect(self._refresh_visible)
        self._last_refresh = 0.0

        c.analysis_ready.connect(self._on_result)
        s.model_changed.connect(self._on_model)
        s.layer_changed.connect(self._on_layer)
        s.channel_changed.connect(self._on_channel)
        s.probe_changed.connect(self._on_probe)
        step_view.position_requested.connect(self._on_step_position)
        if feature_view is not None:
            feature_view.position_selected.connect(self._on_feature_position)
        # The CAM view's layer picker chooses the Grad-CAM layer, not the window's selected layer.
        try:
            cam_view.layer_requested.disconnect(c.select_layer)
        except TypeError:
            pass
        cam_view.class_requested.connect(self._on_cam_class)
        cam_view.method_requested.connect(self._on_cam_method)
        cam_view.layer_requested.connect(self._on_cam_layer)
        # Whether each view's tab is in front: its dock says so at once, while the view's own geometry
        # (QMainWindow moves the tabs behind out of the window) follows only at the next layout.
        self._front: dict = {}
        for view in (step_view, cam_view):
            dock = window.view_docks.get(view)
            if dock is not None:
                dock.visibilityChanged.connect(self._on_visibility)

    # ---- what changed -------------------------------------------------------------------
    def _on_model(self, model) -> None:
        self.step.reset()
        self.cam.reset()
        self.cam_params = {}
        self.cam_view.reset_choices()
        self.cam_view.set_layer_choices(grad_cam_layers(model.info))
        self._stale = {self.step: True, self.cam: True}

    def _layer_info(self, name):
        model = self.session.model
        return next((li for li in getattr(model.info, "layers", ()) if li.name == name), None) if model else None

    def _on_layer(self, name) -> None:
        self.layer = name
        info = self._layer_info(name)
        kind = STEP_KINDS.get(getattr(info, "kind", ""))
        if info is None or kind is None:
            self.step.reset()
            explainable = [li.name for li in getattr(self.session.model.info, "layers", ())
                           if li.kind in STEP_KINDS][:8] if self.session.model else []
            what = f"'{name}' ({getattr(info, 'kind', 'not a layer')}): " if name else ""
            self.step_view.show_problem(what + "step by step explains convolution, pooling and fully connected "
                                        "layers" + (f", such as {', '.join(explainable)}." if explainable else ".")
                                        + " Pick one in the layer tree.")
            return
        shape = tuple(info.output_shape or ())
        count = int(shape[0]) if shape else 1
        if kind == "linear":
            self.unit = self._default_unit(info, count)
        else:
            self.unit = min(self.session.channel or 0, count - 1)
            h, w = (shape[1], shape[2]) if len(shape) == 3 else (1, 1)
            self.y, self.x = h // 2, w // 2     # the middle, where a centred digit is
        self.step_view.set_units(count, self.unit, linear=kind == "linear")
        self._ask_step(force=True)

    def _default_unit(self, info, count: int) -> int:
        """For the model's last layer, the predicted class; else the first unit."""
        names = self.session.layer_names()
        probe = self.session.latest_probe
        if names and names[-1] == info.name and probe is not None and 0 <= probe.predicted < count:
            return int(probe.predicted)
        return 0

    def _on_channel(self, channel) -> None:
        if channel is None or self.layer is None or channel == self.unit:
            return
        self.unit = int(channel)
        info = self._layer_info(self.layer)
        if info is not None and info.kind in STEP_KINDS:
            count = int(info.output_shape[0]) if info.output_shape else 1
            self.step_view.set_units(count, self.unit, linear=info.kind == "linear")
            self._ask_step(force=True)

    def _on_feature_position(self, channel: int, y: int, x: int, pixel: bool) -> None:
        info = self._layer_info(self.layer)
        if info is None or STEP_KINDS.get(info.kind) not in ("conv", "pool"):
            return
        self.unit, self.y, self.x = int(channel), int(y), int(x)
        count = int(info.output_shape[0]) if info.output_shape else 1
        self.step_view.set_units(count, self.unit)
        if pixel:       # a deliberate pick of one position: show its arithmetic
            dock = self.window.view_docks.get(self.step_view)
            if dock is not None:
                dock.show()
                dock.raise_()
        self._ask_step(force=True)

    def _on_step_position(self, y: int, x: int) -> None:
        self.y, self.x = int(y), int(x)
        self._ask_step(force=True)

    def _on_cam_class(self, index: int) -> None:
        self.cam_params["class_index"] = None if index == PREDICTED else int(index)
        self._ask_cam(force=True)

    def _on_cam_method(self, method: str) -> None:
        self.cam_params["method"] = method
        self._ask_cam(force=True)

    def _on_cam_layer(self, name: str) -> None:
        self.cam_params["layer"] = name or None
        self._ask_cam(force=True)

    def _on_probe(self, _snap) -> None:
        self._stale = {self.step: True, self.cam: True}
        wait = REASK_MS / 1000 - (time.monotonic() - self._last_refresh)
        if wait <= 0:
            self._refresh_visible()
        elif not self._timer.isActive():
            self._timer.start(int(wait * 1000) + 1)

    def _on_visibility(self, visible: bool) -> None:
        dock = self.sender()
        view = next((v for v, d in self.window.view_docks.items() if d is dock), None)
        if view is not None:
            self._front[view] = bool(visible)
        if visible:
            QTimer.singleShot(0, self._refresh_visible)

    def shown(self, view) -> bool:
        """Is ``view`` where the user can see it (its tab in front)?"""
        front = self._front.get(view)
        return view.isVisible() and (front if front is not None else view.on_screen())

    def _refresh_visible(self) -> None:
        self._last_refresh = time.monotonic()
        self._ask_step()
        self._ask_cam()

    # ---- asking -------------------------------------------------------------------------
    def step_params(self) -> dict | None:
        info = self._layer_info(self.layer)
        if info is None or info.kind not in STEP_KINDS:
            return None
        return {"layer": self.layer, "channel": self.unit, "y": self.y, "x": self.x}

    def _ask_step(self, force: bool = False) -> None:
        params = self.step_params()
        if params is None or self.session.model is None:
            return
        if not self.shown(self.step_view):
            self._stale[self.step] = True    # asked for when it is shown
            return
        if not (force or self._stale[self.step]):
            return
        self._stale[self.step] = False
        self.step.ask(params)

    def _ask_cam(self, force: bool = False) -> None:
        if self.session.model is None or not (force or self._stale[self.cam]) or not self.shown(self.cam_view):
            return
        self._stale[self.cam] = False
        self.cam.ask({k: v for k, v in self.cam_params.items() if v is not None})

    def _on_result(self, result) -> None:
        for asker in (self.step, self.cam):
            if asker.answered(result):
                return
