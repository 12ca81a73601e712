"""Ready-made training set-ups for a lecture, as plain data (no torch).

A recipe names everything one "watch it learn" run needs: the architecture and its
options, the data set, the :class:`TrainConfig` fields (optimizer, learning rate, batch
size, slow-motion speed) and how the filter view should show the kernels. The lessons
menu and ``scripts/watch_it_learn.py`` read the same recipe, so what is measured by the
script is what a class is shown.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Mapping

from .config import TrainConfig

# How the filter view scales kernels (gui/views/filters.py uses the same words):
# "per layer" puts all kernels on one symmetric range; "per filter" gives each output
# filter its own symmetric range, so that a filter's pattern shows even while its weights
# are still small next to another's.
FILTER_SCALES = ("per layer", "per filter")


@dataclass(frozen=True)
class Recipe:
    name: str                                   # key in RECIPES
    title: str                                  # for the lessons menu
    summary: str                                # one or two sentences: what to look at
    arch: str                                   # zoo name (core.architectures.ARCHITECTURES)
    options: Mapping[str, Any]                  # build options (activation, pooling, batchnorm, ...)
    dataset: str                                # built-in data set name
    val_fraction: float
    train: Mapping[str, Any]                    # TrainConfig fields that differ from its defaults
    filter_layer: str                           # the conv layer whose kernels the lesson shows
    filter_modes: tuple[str, ...]               # side by side: "weights", "change since start"
    filter_scale: str                           # one of FILTER_SCALES
    fresh_weights: bool = True                  # start from newly initialised weights (seeded)
    evidence: Mapping[str, Any] = field(default_factory=dict)  # what scripts/watch_it_learn.py measured

    def __post_init__(self):
        if self.filter_scale not in FILTER_SCALES:
            raise ValueError(f"filter_scale must be one of {FILTER_SCALES}, not {self.filter_scale!r}")
        known = {f.name for f in fields(TrainConfig)}
        unknown = set(self.train) - known
        if unknown:
            raise ValueError(f"recipe {self.name!r}: unknown TrainConfig field(s) {', '.join(sorted(unknown))}")
        for name in ("options", "train", "evidence"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        self.train_config().validate()

    def train_config(self, **overrides: Any) -> TrainConfig:
        """A fresh (mutable) TrainConfig of this recipe; ``overrides`` replace single fields."""
        return TrainConfig(**{**self.train, **overrides})


WATCH_LENET5_LEARN = Recipe(
    name="watch_lenet5_learn",
    title="Watch LeNet-5 learn",
    summary=("LeNet-5 starts from random weights on real handwritten digits. Watch the loss fall and the "
             "six first-layer filters turn from noise into stroke and edge detectors."),
    arch="lenet5",
    options={"activation": "relu", "pooling": "max", "batchnorm": False, "dropout": 0.0},
    dataset="mnist",
    val_fraction=0.1,
    # AdamW moves every weight at about the same pace, so the filters change from the first
    # steps; its strong decoupled weight decay (lr x 0.5 = 0.15% a step) wears the random start
    # away, so what is left after a minute or two is what the data taught: strokes and edges.
    # Plain SGD at 0.01 leaves C1 close to its random start; SGD fast enough to move it diverges.
    train={"optimizer": "adamw", "lr": 0.003, "weight_decay": 0.5, "batch_size": 32, "epochs": 50,
           "max_steps_per_sec": 20.0, "seed": 0},
    filter_layer="C1",
    filter_modes=("weights", "change since start"),
    filter_scale="per filter",
    # scripts/watch_it_learn.py, real time on a 2-core CPU (seed 0): training time -> loss, and the C1
    # filters' structure-tensor coherence (random 5x5 filters: 0.30; an oriented edge: near 1).
    # Today's default (SGD, lr 0.01, batch 64) reaches coherence 0.42 at 180 s: the random start stays.
    evidence={"loss": {0: 2.30, 1: 0.86, 2: 0.56, 10: 0.17, 60: 0.07, 180: 0.03},
              "coherence": {0: 0.30, 10: 0.37, 30: 0.52, 60: 0.68, 120: 0.82, 180: 0.80},
              "steps_per_sec_measured": 19.6, "sgd_0.01_coherence_180s": 0.42},
)

RECIPES: Mapping[str, Recipe] = MappingProxyType({r.name: r for r in (WATCH_LENET5_LEARN,)})
