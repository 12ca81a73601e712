"""Replaying a run file: any recorded step on demand, played back (compare: the controller's pin).

The window opens a ``.cnnviz`` run (recorded by the app's own training or by a user's
``Recorder``) with ``core.record.run_reader.RunReader`` (sqlite and numpy: no torch here)
and shows it through the same session and views as live training: a snapshot read back
is the same record the engine makes. A run still being written is followed (the reader
sees new steps each second).

Seeking shows the snapshot at or before the step asked for; the steps between two
snapshots have their loss and learning rate (the timeline's curve) but no maps.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from visualizer.core.engine.messages import LoadedModel
from visualizer.core.record.run_reader import RunReader
from visualizer.core.snapshot import EpochEnd, TrainingSnapshot, frozen_array

FOLLOW_MS = 1000          # a run being written: look for new rows this often
PLAY_FPS = 10.0           # snapshots a second when playing back


class RunReplay(QObject):
    """One open run; see the module docstring. Lives in the GUI thread."""

    opened = pyqtSignal(object)          # LoadedModel of the run's model
    snapshot_ready = pyqtSignal(object)  # TrainingSnapshot to show
    epochs_ready = pyqtSignal(object)    # list[EpochEnd] of the run so far
    grown = pyqtSignal()                 # new steps or snapshots arrived (a run being written)
    position_changed = pyqtSignal(int)   # the step now shown
    playing_changed = pyqtSignal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.reader: RunReader | None = None
        self.path: str | None = None
        self.step = 0                     # the step of the snapshot shown
        self._shown: TrainingSnapshot | None = None
        self._follow = QTimer(self)
        self._follow.setInterval(FOLLOW_MS)
        self._follow.timeout.connect(self._refresh)
        self._play = QTimer(self)
        self._play.setInterval(int(1000 / PLAY_FPS))
        self._play.timeout.connect(self._play_next)

    # ---- opening -----------------------------------------------------------------
    def open(self, path: str) -> LoadedModel:
        """Open ``path`` (RunFileError, one line naming the file, if it is not a run); show its last snapshot."""
        reader = RunReader(path)         # raises before anything here changes
        meta = reader.meta
        info = reader.model_info
        if info is None:
            reader.close()
            from visualizer.core.record.run_schema import RunFileError
            raise RunFileError(path, "holds no model description", "it was not written by cnn-visualizer")
        self.close()
        self.reader, self.path = reader, os.fspath(path)
        model = LoadedModel(info=info, input_shape=tuple(meta.get("input_shape") or info.input_shape),
                            class_names=tuple(meta.get("class_names") or ()),
                            arch=str(meta.get("model") or meta.get("arch") or "run"), source=self.path,
                            meta=tuple(sorted((k, v) for k, v in meta.items() if isinstance(v, (str, int, float)))),
                            dataset=meta.get("dataset"))
        self.opened.emit(model)
        self.epochs_ready.emit(self.epochs())
        steps = self.snapshot_steps()
        self.seek(int(steps[-1]) if len(steps) else 0)
        if not reader.finished:
            self._follow.start()
        return model

    def close(self) -> None:
        self.pause()
        self._follow.stop()
        if self.reader is not None:
            self.reader.close()
        self.reader = self.path = None
        self._shown = None

    @property
    def active(self) -> bool:
        return self.reader is not None

    # ---- what the timeline draws ---------------------------------------------------
    def steps(self) -> np.ndarray:
        return self.reader.steps() if self.reader is not None else np.zeros(0)

    def snapshot_steps(self) -> np.ndarray:
        return self.reader.snapshot_steps() if self.reader is not None else np.zeros(0, np.int64)

    def epochs(self) -> list[EpochEnd]:
        if self.reader is None:
            return []
        return [EpochEnd(e.epoch, e.step, _num(e.train_loss), _num(e.train_accuracy), e.val_loss, e.val_accuracy)
                for e in self.reader.epochs()]

    # ---- moving --------------------------------------------------------------------
    def seek(self, step: int) -> None:
        """Show the snapshot at or before ``step`` (the first one for a step before it)."""
        if self.reader is None:
            return
        found = self.reader.load_snapshot(int(step))
        if found is None:
            steps = self.snapshot_steps()
            if not len(steps):
                return
            found = self.reader.load_snapshot(int(steps[0]))
        at, snap = found
        self.step = int(at)
        self._shown = self._with_history(snap)
        self._emit_shown()
        self.position_changed.emit(self.step)

    def step_by(self, n: int) -> None:
        """The ``n``-th snapshot after (or before, n < 0) the one shown."""
        steps = self.snapshot_steps()
        if not len(steps):
            return
        i = int(np.searchsorted(steps, self.step, side="left"))
        self.seek(int(steps[max(0, min(len(steps) - 1, i + n))]))

    def seek_epoch(self, epoch: int) -> None:
        """The last snapshot of ``epoch`` (0-based)."""
        for e in self.epochs():
            if e.epoch == epoch:
                self.seek(e.step)
                return

    def play(self) -> None:
        if self.reader is not None and not self._play.isActive():
            self._play.start()
            self.playing_changed.emit(True)

    def pause(self) -> None:
        if self._play.isActive():
            self._play.stop()
            self.playing_changed.emit(False)

    def toggle_play(self) -> None:
        self.pause() if self._play.isActive() else self.play()

    def _play_next(self) -> None:
        steps = self.snapshot_steps()
        if not len(steps) or self.step >= int(steps[-1]):
            self.pause()
            return
        self.step_by(1)

    def _emit_shown(self) -> None:
        if self._shown is not None:
            self.snapshot_ready.emit(self._shown)

    # ---- a run being written --------------------------------------------------------
    def _refresh(self) -> None:
        if self.reader is None:
            return
        if self.reader.refresh():
            self.epochs_ready.emit(self.epochs())
            self.grown.emit()
        if self.reader.finished:
            self._follow.stop()

    def _with_history(self, snap: TrainingSnapshot) -> TrainingSnapshot:
        """Every step's loss up to this snapshot, from the run's step table, as the curves' history."""
        steps = self.steps()
        if not len(steps):
            return snap
        upto = steps[steps["step"] <= snap.step]
        rows = np.stack([upto["step"], upto["loss"], upto["accuracy"]], axis=1) if len(upto) else np.zeros((0, 3))
        return dataclasses.replace(snap, history=frozen_array(rows.astype(np.float32)))


def _num(v) -> float:
    return float("nan") if v is None else float(v)
