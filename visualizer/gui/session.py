"""GUI-side state: what model is shown, what is selected, the latest snapshots.

Lives in the GUI thread and holds only plain data that came from the worker
(ModelInfo, frozen snapshots) — never the model itself. Views and widgets
learn about changes through its signals; the main window's refresh timer reads
``latest_*`` and pushes them to the visible views.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from PyQt6.QtCore import QObject, pyqtSignal

from visualizer.core.engine.messages import LoadedModel
from visualizer.core.snapshot import EpochEnd, ProbeSnapshot, TrainingSnapshot

EPOCHS_KEPT = 5_000   # epoch results the session remembers (a long run on a small set has many)

STOPPED, RUNNING, PAUSED = "stopped", "running", "paused"


@dataclass
class SessionState:
    model: LoadedModel | None = None
    layer: str | None = None
    channel: int | None = None
    training_state: str = STOPPED
    probe: ProbeSnapshot | None = None
    training: TrainingSnapshot | None = None
    epochs: deque[EpochEnd] = field(default_factory=lambda: deque(maxlen=EPOCHS_KEPT))  # the latest ones


class Session(QObject):
    """Observable state; setters emit only on a real change so views do not redraw for nothing."""

    model_changed = pyqtSignal(object)       # LoadedModel
    layer_changed = pyqtSignal(object)       # str | None
    channel_changed = pyqtSignal(object)     # int | None
    state_changed = pyqtSignal(str)          # stopped | running | paused
    probe_changed = pyqtSignal(object)       # ProbeSnapshot
    training_changed = pyqtSignal(object)    # TrainingSnapshot
    epoch_added = pyqtSignal(object)         # EpochEnd

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.state = SessionState()
        self.probe_serial = 0      # bumps with every new probe so views can skip repeats
        self.training_serial = 0

    # ---- read access -----------------------------------------------------------
    @property
    def model(self) -> LoadedModel | None:
        return self.state.model

    @property
    def layer(self) -> str | None:
        return self.state.layer

    @property
    def channel(self) -> int | None:
        return self.state.channel

    @property
    def training_state(self) -> str:
        return self.state.training_state

    @property
    def latest_probe(self) -> ProbeSnapshot | None:
        return self.state.probe

    @property
    def latest_training(self) -> TrainingSnapshot | None:
        return self.state.training

    @property
    def epochs(self) -> list[EpochEnd]:
        return list(self.state.epochs)

    def layer_names(self) -> list[str]:
        info = self.state.model.info if self.state.model else None
        return [layer.name for layer in getattr(info, "layers", ())]

    # ---- changes -----------------------------------------------------------------
    def set_model(self, model: LoadedModel) -> None:
        # A new model invalidates every snapshot and selection made for the old one.
        self.state = SessionState(model=model, training_state=self.state.training_state)
        names = self.layer_names()
        self.state.layer = default_layer(model.info) if names else None
        self.model_changed.emit(model)
        self.layer_changed.emit(self.state.layer)

    def set_layer(self, name: str | None) -> None:
        if name == self.state.layer:
            return
        self.state.layer = name
        self.state.channel = None
        self.layer_changed.emit(name)
        self.channel_changed.emit(None)

    def set_channel(self, channel: int | None) -> None:
        if channel == self.state.channel:
            return
        self.state.channel = channel
        self.channel_changed.emit(channel)

    def set_training_state(self, state: str) -> None:
        if state == self.state.training_state:
            return
        self.state.training_state = state
        self.state_changed.emit(state)

    def set_probe(self, snap: ProbeSnapshot) -> None:
        self.state.probe = snap
        self.probe_serial += 1
        self.probe_changed.emit(snap)

    def set_training(self, snap: TrainingSnapshot) -> None:
        self.state.training = snap
        self.training_serial += 1
        if snap.probe is not None:
            self.set_probe(snap.probe)
        self.training_changed.emit(snap)

    def add_epoch(self, ev: EpochEnd) -> None:
        self.state.epochs.append(ev)
        self.epoch_added.emit(ev)

    def clear_history(self) -> None:
        self.state.epochs.clear()
        self.state.training = None


def default_layer(info) -> str | None:
    """The first conv layer: the most telling thing to show when a model opens."""
    layers = list(getattr(info, "layers", ()))
    for layer in layers:
        if getattr(layer, "kind", "") == "conv":
            return layer.name
    return layers[0].name if layers else None
