"""Training controls greyed out, with the reason in their tooltips, for a model that cannot be trained here.

An ONNX file opens for inspection only (``LoadedModel.training_refusal`` says why). The
training panel enables its buttons from the run's state alone; this runs after it on every
state and model change and takes Start, Step, Reset weights and Save back for such a model.
Space and the menu still reach the controller, which answers with the same reason in a
message rather than starting anything.
"""
from __future__ import annotations

from PyQt6.QtCore import QObject


class TrainingAvailability(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        panel = window.training_panel
        self._buttons = (panel.start_button, panel.step_button, panel.reset_button, panel.save_button)
        # Space and Step stay: the controller answers them with the reason (a silent key helps nobody).
        self._actions = (window.act_reset, window.act_save)
        self._tips = {b: b.toolTip() for b in self._buttons}
        window.session.model_changed.connect(self.apply)
        window.session.state_changed.connect(self.apply)   # after the panel's own set_state (connected first)

    def reason(self) -> str:
        return getattr(self.window.session.model, "training_refusal", "") or ""

    def apply(self, *_args) -> None:
        reason = self.reason()
        for b in self._buttons:
            if reason:
                b.setEnabled(False)
                b.setToolTip(f"Not available: {reason}")
            else:
                b.setToolTip(self._tips[b])
        for a in self._actions:
            a.setEnabled(not reason)
        if not reason:
            # Give the panel back its own view of what the state allows.
            self.window.training_panel.set_state(self.window.session.training_state)
