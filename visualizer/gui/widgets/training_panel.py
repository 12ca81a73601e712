"""The training form: model options, data, optimizer, schedule, augmentation, controls.

The panel only collects choices and announces button presses; the controller
decides what happens and calls ``set_state`` back. The main window owns the
keyboard shortcuts (QActions); ``buttons`` exposes the push buttons so they
can be tied to those actions, and ``set_shortcuts`` puts the keys in tooltips.
"""
from __future__ import annotations

import dataclasses
import math

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from visualizer.core.config import TrainConfig

from .choices import (
    BROWSE,
    DISPLAY_NAMES,
    FALLBACK_ACTIVATIONS,
    FALLBACK_ARCHITECTURES,
    FALLBACK_DATASETS,
    FALLBACK_POOLINGS,
    OPTIMIZERS,
    SCHEDULES,
    combo as _combo,
    describe_items as _describe_items,
    names as _names,
    registry as _registry,
)
from .log_spin_box import LogSpinBox

STATES = ("stopped", "running", "paused")
# Slow motion: the digits train in seconds at full speed, too fast to watch in a lecture.
# 20 steps/s is the "watch it learn" recipe's pace (core/recipes.py).
SPEEDS = ((0.0, "Full speed"), (50.0, "Fast (50 steps/s)"), (20.0, "Watch (20 steps/s)"),
          (10.0, "Lecture (10 steps/s)"), (2.0, "Slow motion (2 steps/s)"))
START_TEXT, LOADING_TEXT = "Start", "Loading…"

# Suggested keys for the main window's QActions (window-level, so plain letters
# would fight text fields: Space and Ctrl combinations only).
DEFAULT_SHORTCUTS = {
    "start": "Space", "pause": "Space", "step": "Ctrl+Right", "stop": "Ctrl+.",
    "reset": "Ctrl+Shift+R", "save": "Ctrl+S",
}
_BUTTON_TIPS = {
    "start": "Start training with these settings",
    "pause": "Pause training (or resume it when paused)",
    "step": "Run one training step while paused",
    "stop": "Stop training (the weights are kept)",
    "reset": "Re-initialise the weights randomly",
    "save": "Save the model and its training state to a file",
}


OPEN_MODEL_PREFIX = "__open__:"     # the arch entry of a model that is not a built-in architecture


def _set_combo(box: QComboBox, data) -> bool:
    i = box.findData(data)
    if i >= 0:
        box.setCurrentIndex(i)
    return i >= 0


def _spin(lo, hi, value, step=1) -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    s.setValue(value)
    return s


def _dspin(lo, hi, value, step, decimals=2, suffix="") -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setDecimals(decimals)
    s.setSingleStep(step)
    s.setValue(value)
    if suffix:
        s.setSuffix(suffix)
    return s


class TrainingPanel(QWidget):
    start = pyqtSignal()
    pause = pyqtSignal()
    resume = pyqtSignal()
    step = pyqtSignal()
    stop = pyqtSignal()
    reset = pyqtSignal()
    save = pyqtSignal()
    lr_changed = pyqtSignal(float)
    speed_changed = pyqtSignal(float)      # steps per second, 0 = full speed; live while running
    model_options_changed = pyqtSignal(dict)
    dataset_browse = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._state = "stopped"
        self._building = True
        self._build_controls()
        self._build_layout()
        self._connect()
        self._building = False
        self._update_dependent()
        self.set_state("stopped")

    # -- construction -----------------------------------------------------
    def _build_controls(self) -> None:
        self.dataset = _combo(_names("visualizer.core.datasets", "BUILTIN_DATASETS", FALLBACK_DATASETS))
        _describe_items(self.dataset, _registry("visualizer.core.datasets", "BUILTIN_DATASETS"))
        self.dataset.addItem("Open folder/file…", BROWSE)
        self._last_dataset_index = 0
        self.arch = _combo(_names("visualizer.core.architectures", "ARCHITECTURES", FALLBACK_ARCHITECTURES))
        self._arch_specs = _registry("visualizer.core.architectures", "ARCHITECTURES")
        _describe_items(self.arch, self._arch_specs)
        self.activation = _combo(_names("visualizer.core.architectures", "ACTIVATIONS", FALLBACK_ACTIVATIONS))
        self.pooling = _combo(_names("visualizer.core.architectures", "POOLINGS", FALLBACK_POOLINGS))
        self.batchnorm = QCheckBox("Batch normalisation")
        self.dropout = _dspin(0.0, 0.9, 0.0, 0.05)
        self.width = _dspin(0.25, 4.0, 1.0, 0.25, suffix=" ×")

        self.optimizer = _combo([(n, DISPLAY_NAMES.get(n, n)) for n in OPTIMIZERS])
        self.lr = LogSpinBox(value=0.01)
        self.momentum = _dspin(0.0, 0.999, 0.9, 0.05, decimals=3)
        self.nesterov = QCheckBox("Nesterov")
        self.weight_decay = LogSpinBox(minimum=0.0, maximum=1.0, value=0.0)
        self.batch_size = _spin(1, 4096, 64)
        self.epochs = _spin(1, 1000, 3)
        self.seed = _spin(0, 2_147_483_647, 0)
        self.speed = _combo(SPEEDS)

        self.schedule = _combo([(n, DISPLAY_NAMES.get(n, n)) for n in SCHEDULES])
        self.step_size = _spin(1, 1000, 1)
        self.step_size.setSuffix(" epoch(s)")
        self.gamma = _dspin(0.01, 1.0, 0.1, 0.05)

        self.rotation = _dspin(0.0, 180.0, 0.0, 5.0, decimals=0, suffix="°")
        self.translation = _dspin(0.0, 0.5, 0.0, 0.05)
        self.scale = _dspin(0.0, 0.5, 0.0, 0.05)
        self.hflip = QCheckBox("Horizontal flip")

        self.clip_enabled = QCheckBox("Clip gradient norm at")
        self.grad_clip = _dspin(0.01, 1000.0, 1.0, 0.5)

        # What is open now: a user's file.py:Name or a checkpoint's architecture, not the last choice.
        self.model_note = QLabel()
        self.model_note.setWordWrap(True)
        self.model_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.model_note.setTextFormat(Qt.TextFormat.PlainText)
        self._zoo_arch = self.arch.currentData()      # the last built-in architecture chosen (persisted)

        self.start_button = QPushButton(START_TEXT)
        self.pause_button = QPushButton("Pause")
        self.step_button = QPushButton("Step")
        self.stop_button = QPushButton("Stop")
        self.reset_button = QPushButton("Reset")
        self.save_button = QPushButton("Save…")
        self.buttons = {
            "start": self.start_button, "pause": self.pause_button, "step": self.step_button,
            "stop": self.stop_button, "reset": self.reset_button, "save": self.save_button,
        }
        self.set_shortcuts(DEFAULT_SHORTCUTS)

        tips = {
            self.dataset: "Training data: a built-in set or your own folder/file",
            self.arch: "Network architecture",
            self.width: "Multiplies the number of channels of every layer",
            self.lr: "Learning rate; arrows step 1-2-5 per decade. Can be changed while training",
            self.weight_decay: "L2 penalty on the weights (0 = off)",
            self.translation: "Random shift as a fraction of the image size",
            self.scale: "Random zoom in/out by up to this fraction",
            self.seed: "Random seed for weights, shuffling and augmentation",
        }
        for w, tip in tips.items():
            w.setToolTip(tip)

    def _build_layout(self) -> None:
        def form(title, rows):
            box = QGroupBox(title)
            f = QFormLayout(box)
            f.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            for label, w in rows:
                if label is None:
                    f.addRow(w)
                else:
                    f.addRow(label, w)
            return box

        clip_row = QWidget()
        g = QGridLayout(clip_row)
        g.setContentsMargins(0, 0, 0, 0)
        g.addWidget(self.clip_enabled, 0, 0)
        g.addWidget(self.grad_clip, 0, 1)

        content = QWidget()
        v = QVBoxLayout(content)
        v.addWidget(form("Model", [(None, self.model_note), ("&Architecture", self.arch), ("Ac&tivation", self.activation),
                                   ("&Pooling", self.pooling), (None, self.batchnorm),
                                   ("&Dropout", self.dropout), ("&Width", self.width)]))
        v.addWidget(form("Data", [("Data&set", self.dataset), ("&Batch size", self.batch_size),
                                  ("&Epochs", self.epochs), ("Seed", self.seed), ("Spee&d", self.speed)]))
        v.addWidget(form("Optimizer", [("&Optimizer", self.optimizer), ("&Learning rate", self.lr),
                                       ("&Momentum", self.momentum), (None, self.nesterov),
                                       ("Weight decay", self.weight_decay), (None, clip_row)]))
        v.addWidget(form("Learning-rate schedule", [("Schedule", self.schedule),
                                                    ("Decay every", self.step_size),
                                                    ("Decay factor", self.gamma)]))
        v.addWidget(form("Augmentation", [("Rotation ±", self.rotation),
                                          ("Translation ±", self.translation),
                                          ("Scale ±", self.scale), (None, self.hflip)]))
        v.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        # As wide as the form beside its vertical scroll bar: with no horizontal one, a narrower
        # area cut the fields' right edge off under the scroll bar.
        scroll.setMinimumWidth(content.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())

        controls = QGridLayout()
        controls.setHorizontalSpacing(4)
        for b in self.buttons.values():
            # The buttons share the panel's width: a narrow panel must not push them past its edge.
            b.setMinimumWidth(40)
            b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        controls.addWidget(self.start_button, 0, 0)
        controls.addWidget(self.pause_button, 0, 1)
        controls.addWidget(self.step_button, 0, 2)
        controls.addWidget(self.stop_button, 1, 0)
        controls.addWidget(self.reset_button, 1, 1)
        controls.addWidget(self.save_button, 1, 2)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addLayout(controls)
        outer.addWidget(scroll, 1)

    def _connect(self) -> None:
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self._on_pause_clicked)
        self.step_button.clicked.connect(self.step)
        self.stop_button.clicked.connect(self.stop)
        self.reset_button.clicked.connect(self.reset)
        self.save_button.clicked.connect(self.save)
        self.lr.valueChanged.connect(lambda v: self.lr_changed.emit(float(v)))
        self.speed.currentIndexChanged.connect(lambda _i: self.speed_changed.emit(float(self.speed.currentData())))
        self.dataset.currentIndexChanged.connect(self._on_dataset_changed)
        self.arch.currentIndexChanged.connect(self._on_arch_changed)
        for box in (self.activation, self.pooling):
            box.currentIndexChanged.connect(self._emit_model_options)
        self.batchnorm.toggled.connect(self._emit_model_options)
        self.dropout.valueChanged.connect(self._emit_model_options)
        self.width.valueChanged.connect(self._emit_model_options)
        self.optimizer.currentIndexChanged.connect(self._update_dependent)
        self.schedule.currentIndexChanged.connect(self._update_dependent)
        self.clip_enabled.toggled.connect(self._update_dependent)
        self.momentum.valueChanged.connect(self._update_dependent)

    # -- signals ----------------------------------------------------------
    def _on_pause_clicked(self) -> None:
        (self.resume if self._state == "paused" else self.pause).emit()

    def _on_dataset_changed(self, index: int) -> None:
        if self.dataset.itemData(index) == BROWSE:
            # The entry is an action, not a choice: show the previous dataset
            # until the main window adds what the user picked (add_dataset).
            self.dataset.blockSignals(True)
            self.dataset.setCurrentIndex(self._last_dataset_index)
            self.dataset.blockSignals(False)
            if not self._building:
                self.dataset_browse.emit()
            return
        self._last_dataset_index = index
        self._emit_model_options()

    def _on_arch_changed(self, _i: int) -> None:
        # Each architecture has a width that trains quickly on a CPU; start there.
        spec = self._arch_specs.get(self.arch.currentData())
        if self._is_zoo(self.arch.currentData()):
            self._zoo_arch = self.arch.currentData()
        width = getattr(spec, "default_width", None)
        if width and not self._building:
            self.width.blockSignals(True)
            self.width.setValue(float(width))
            self.width.blockSignals(False)
        self._update_dependent()
        self._emit_model_options()

    def _emit_model_options(self, *_):
        if not self._building:
            self.model_options_changed.emit(self.options())

    def _update_dependent(self, *_):
        """Enable fields that only mean something for the current choices."""
        editable = self._state == "stopped"
        sgd = self.optimizer.currentData() == "sgd"
        self.momentum.setEnabled(editable and sgd)
        self.nesterov.setEnabled(editable and sgd and self.momentum.value() > 0)
        step = self.schedule.currentData() == "step"
        self.step_size.setEnabled(editable and step)
        self.gamma.setEnabled(editable and step)
        self.grad_clip.setEnabled(editable and self.clip_enabled.isChecked())
        spec = self._arch_specs.get(self.arch.currentData())
        opts = getattr(spec, "options", None) if self._is_zoo(self.arch.currentData()) else ()
        self.width.setEnabled(editable and opts != ())
        # Options the architecture ignores (ResNet has no pooling choice) are greyed out; a model
        # from a file or a user's class has none of them.
        for key, w in (("activation", self.activation), ("pooling", self.pooling),
                       ("batchnorm", self.batchnorm), ("dropout", self.dropout)):
            w.setEnabled(editable and (opts is None or key in opts))

    # -- public API -------------------------------------------------------
    def set_shortcuts(self, shortcuts: dict[str, str]) -> None:
        """Show the main window's keys in the button tooltips (``{"start": "Space", ...}``)."""
        for key, button in self.buttons.items():
            keys = shortcuts.get(key)
            tip = _BUTTON_TIPS[key]
            button.setToolTip(f"{tip} ({keys})" if keys else tip)

    def add_dataset(self, spec: str, label: str | None = None) -> None:
        """Add (if new) and select a dataset, e.g. a folder the user browsed to."""
        i = self.dataset.findData(spec)
        if i < 0:
            i = self.dataset.count() - 1  # keep "Open folder/file…" last
            self.dataset.insertItem(i, label or spec, spec)
            self.dataset.setItemData(i, spec, Qt.ItemDataRole.ToolTipRole)
        self.dataset.setCurrentIndex(i)

    def state(self) -> str:
        return self._state

    def set_loading(self, on: bool) -> None:
        """Start was pressed before the model was open: say that it starts once it is."""
        self.start_button.setText(LOADING_TEXT if on else START_TEXT)
        self.start_button.setToolTip("Training starts as soon as the model is loaded" if on
                                     else _BUTTON_TIPS["start"] + " (Space)")
        self.start_button.setEnabled(not on and self._state == "stopped")

    def _is_zoo(self, arch) -> bool:
        return arch in self._arch_specs if self._arch_specs else not str(arch).startswith(OPEN_MODEL_PREFIX)

    def show_open_model(self, arch: str | None, title: str, note: str, options: dict | None = None) -> None:
        """Name the model actually open. A built-in architecture is selected with its options; anything
        else (a user's file.py:Name, a pickled model, an archive) gets its own entry, and the options,
        which only built-in architectures have, are greyed out. Emits nothing."""
        self.blockSignals(True)
        try:
            i = self.arch.findData(OPEN_MODEL_PREFIX, Qt.ItemDataRole.UserRole, Qt.MatchFlag.MatchStartsWith)
            if i >= 0:
                self.arch.removeItem(i)
            if arch and self._is_zoo(arch):
                self.set_values({"arch": arch, **(options or {})})
            else:
                self.arch.insertItem(0, title, OPEN_MODEL_PREFIX + (arch or title))
                self.arch.setItemData(0, note, Qt.ItemDataRole.ToolTipRole)
                self.arch.setCurrentIndex(0)
            self.model_note.setText(note)
            self._update_dependent()
        finally:
            self.blockSignals(False)

    def set_state(self, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, not {state!r}")
        self._state = state
        stopped, running, paused = (state == s for s in STATES)
        self.start_button.setEnabled(stopped)
        self.pause_button.setEnabled(not stopped)
        self.pause_button.setText("Resume" if paused else "Pause")
        self.step_button.setEnabled(paused)
        self.stop_button.setEnabled(not stopped)
        self.reset_button.setEnabled(not running)
        self.save_button.setEnabled(True)
        # Everything below is fixed once a run starts (changing it needs a restart);
        # the learning rate is the one knob the trainer takes live.
        for w in (self.dataset, self.arch, self.width, self.optimizer, self.nesterov, self.weight_decay,
                  self.batch_size, self.epochs, self.seed, self.schedule, self.rotation,
                  self.translation, self.scale, self.hflip, self.clip_enabled):
            w.setEnabled(stopped)
        self.lr.setEnabled(True)
        self._update_dependent()

    def set_speed(self, steps_per_sec: float) -> None:
        """Select a speed; one not in the list (a lesson file's) gets an entry of its own."""
        v = float(steps_per_sec)
        if not (math.isfinite(v) and 0 <= v <= 1000):
            raise ValueError("outside 0..1000")
        if not _set_combo(self.speed, v):
            self.speed.addItem(f"{v:g} steps/s", v)
            _set_combo(self.speed, v)

    def options(self) -> dict:
        """Model options (kwargs for ``build_model`` by name) and the dataset spec. While a model from a
        file is shown its "arch" is that entry's (OPEN_MODEL_PREFIX...): nothing to build."""
        return {
            "arch": self.arch.currentData(),
            "activation": self.activation.currentData(),
            "pooling": self.pooling.currentData(),
            "batchnorm": self.batchnorm.isChecked(),
            "dropout": float(self.dropout.value()),
            "width": float(self.width.value()),
            "dataset": self.dataset.currentData(),
        }

    def _config_fields(self) -> dict:
        sgd = self.optimizer.currentData() == "sgd"
        return {
            "epochs": int(self.epochs.value()),
            "batch_size": int(self.batch_size.value()),
            "optimizer": self.optimizer.currentData(),
            "lr": float(self.lr.value()),
            "momentum": float(self.momentum.value()),
            # Nesterov is meaningless (and rejected by TrainConfig) without SGD momentum.
            "nesterov": bool(self.nesterov.isChecked() and sgd and self.momentum.value() > 0),
            "weight_decay": float(self.weight_decay.value()),
            "schedule": self.schedule.currentData(),
            "step_size": int(self.step_size.value()),
            "gamma": float(self.gamma.value()),
            "grad_clip": float(self.grad_clip.value()) if self.clip_enabled.isChecked() else None,
            "seed": int(self.seed.value()),
            "max_steps_per_sec": float(self.speed.currentData()),
        }

    def config(self) -> TrainConfig:
        """The panel's settings as a ``core.config.TrainConfig`` (torch-free)."""
        fields = self._config_fields()
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        return TrainConfig(**{k: v for k, v in fields.items() if k in known})

    def augment(self) -> dict:
        return {
            "rotation": float(self.rotation.value()),
            "translation": float(self.translation.value()),
            "scale": float(self.scale.value()),
            "hflip": self.hflip.isChecked(),
        }

    def values(self) -> dict:
        """Every setting as plain JSON-able values, for QSettings."""
        out = dict(self.options())
        out["arch"] = self._zoo_arch   # a model from a file is not a choice to restore next time
        out.update(self._config_fields())
        out.update(self.augment())
        out["clip_enabled"] = self.clip_enabled.isChecked()
        out["grad_clip"] = float(self.grad_clip.value())
        out["nesterov"] = self.nesterov.isChecked()
        return out

    def set_values(self, values: dict) -> list[str]:
        """Restore ``values()``; return ``"key = value (why)"`` for each value that was not usable.

        QSettings may hand back strings ('true', '0.01'), so every value is
        converted; one bad entry never blocks the rest. A number outside a box's
        range (a batch size of 1e20, Infinity) is ignored, not clamped: the box keeps
        its default and the caller can say so. Unknown keys are skipped silently
        (older or newer versions of the app wrote them).
        """
        ignored: list[str] = []
        def as_bool(v):
            return v.strip().lower() in ("1", "true", "yes", "on") if isinstance(v, str) else bool(v)

        combos = {"arch": self.arch, "activation": self.activation, "pooling": self.pooling,
                  "optimizer": self.optimizer, "schedule": self.schedule}
        checks = {"batchnorm": self.batchnorm, "nesterov": self.nesterov, "hflip": self.hflip,
                  "clip_enabled": self.clip_enabled}
        spins = {"dropout": self.dropout, "width": self.width, "lr": self.lr,
                 "momentum": self.momentum, "weight_decay": self.weight_decay,
                 "batch_size": self.batch_size, "epochs": self.epochs, "seed": self.seed,
                 "step_size": self.step_size, "gamma": self.gamma, "rotation": self.rotation,
                 "translation": self.translation, "scale": self.scale, "grad_clip": self.grad_clip}
        for key, v in values.items():
            if v is None:
                continue
            try:
                if key in checks:
                    checks[key].setChecked(as_bool(v))
                elif key in spins:
                    box, number = spins[key], float(v)
                    if not (math.isfinite(number) and box.minimum() <= number <= box.maximum()):
                        raise ValueError(f"outside {box.minimum():g}..{box.maximum():g}")
                    box.setValue(int(number) if isinstance(box, QSpinBox) else number)
                elif key == "max_steps_per_sec":
                    self.set_speed(float(v))
                elif key in combos:
                    if not _set_combo(combos[key], str(v)):
                        raise ValueError("not one of the choices")
                elif key == "dataset" and str(v) != BROWSE:
                    self.add_dataset(str(v))
            except (TypeError, ValueError, OverflowError) as e:
                why = str(e) if str(e).startswith(("outside", "not one")) else "not a usable value"
                ignored.append(f"{key} = {v!r} ({why})")
        self._update_dependent()
        return ignored
