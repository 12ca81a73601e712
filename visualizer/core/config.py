"""How a training run is set up, as plain data (no torch): the GUI builds one, the engine runs it.

``TrainConfig`` (optimizer, schedule, epochs, seed, ...) and ``Augment`` (the random warps of
the training images; applied in ``datasets/augment.py``).

Kept apart from ``training.py`` so that the window's process can make and validate a
configuration without importing torch.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine")
SEED_MAX = 2**32 - 1   # numpy's seed range; torch takes more, but one range for every generator used


@dataclass
class TrainConfig:
    epochs: int = 3
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "none"
    step_size: int = 1          # epochs between decays of the "step" schedule
    gamma: float = 0.1
    grad_clip: float | None = None
    seed: int = 0
    snapshot_hz: float = 30.0   # at most this many a second (0: none, headless training)
    instrumentation_budget: float = 0.01  # max share of training time spent making snapshots
    max_steps_per_sec: float = 0.0  # slow motion for a lecture (0: as fast as possible)
    device: str = "cpu"

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch size must be at least 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be a positive number, not {self.lr}")
        for name, value in (("momentum", self.momentum), ("weight decay", self.weight_decay)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of 0 or more, not {value}")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise ValueError(f"gradient clipping must be a finite norm above 0 (or off), not {self.grad_clip}")
        if not (isinstance(self.seed, int) and 0 <= self.seed <= SEED_MAX):
            raise ValueError(f"seed must be a whole number from 0 to {SEED_MAX}, not {self.seed}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError("Nesterov momentum needs the SGD optimizer with momentum > 0")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Augment:
    rotation: float = 0.0      # degrees: angle drawn uniformly from [-rotation, rotation]
    translation: float = 0.0   # fraction of the image size, per axis, from [-translation, translation]
    scale: float = 0.0         # zoom factor drawn from [1 - scale, 1 + scale]
    hflip: bool = False        # mirror left-right with probability 1/2

    def __post_init__(self):
        if not (self.rotation >= 0 and 0 <= self.translation < 1 and 0 <= self.scale < 1):
            raise ValueError(f"augmentation out of range: {self} (rotation >= 0, translation and scale in [0, 1))")

    @property
    def active(self) -> bool:
        return bool(self.rotation or self.translation or self.scale or self.hflip)
