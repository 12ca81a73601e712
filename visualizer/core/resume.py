"""What a resumed run takes from its checkpoint, and which command-line flags may not contradict it.

``train --resume`` continues the run that was saved: the same architecture and
options, class names, optimizer, schedule, seed, batch size and data split. So
those come from the checkpoint, and a flag that says something else is refused
with both values named, instead of silently training a different run (a new
optimizer on old momentum buffers, another split that leaks validation images
into training). The one setting a resume may change is the number of epochs,
its target. A data set whose classes are not the checkpoint's is refused too.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from .config import TrainConfig
from .errors import LoadError

# Flag (argparse dest) -> the TrainConfig field it sets.
CONFIG_FLAGS = ("batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "schedule",
                "grad_clip", "seed")
# Flag -> the key of the checkpoint's architecture options it sets.
MODEL_FLAGS = ("activation", "pooling", "batchnorm", "dropout", "width", "input_size")
# How the data were split and augmented: recorded in every checkpoint as meta["data"] (the engine).
DATA_FLAGS = ("val_fraction", "augment", "limit")


class ResumeConflict(ValueError):
    """A flag or data set contradicts the run being resumed."""


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def resumed_settings(path: str | os.PathLike, arch: str | None, arch_options: dict, meta: dict,
                     training_state: dict, given: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
    """(the saved TrainConfig, the saved data settings) for a resume, after checking ``given``.

    ``given``: the flags the user typed (argparse dests, values as parsed), nothing
    defaulted. ``epochs`` in it replaces the saved target; every other flag must
    agree with what the checkpoint holds, or ResumeConflict names both values.
    """
    saved = training_state.get("config")
    if not isinstance(saved, dict):
        raise LoadError(path, "its training state holds no training settings to resume with",
                        "train from scratch without --resume")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in saved.items() if k in known})
    data = {"val_fraction": 0.1, "augment": False, "limit": None}
    if isinstance(meta.get("data"), dict):
        data.update({k: v for k, v in meta["data"].items() if k in data})

    conflicts = []

    def check(dest: str, theirs) -> None:
        if dest in given and not _same(given[dest], theirs):
            conflicts.append(f"{_flag(dest)} {given[dest]} conflicts with the checkpoint's {theirs}")

    if arch is not None:
        check("arch", arch)
    for dest in CONFIG_FLAGS:
        check(dest, getattr(config, dest))
    for dest in MODEL_FLAGS:
        if dest in arch_options:
            check(dest, arch_options[dest])
    for dest in DATA_FLAGS:
        # augment: the flag is on/off, the record the augmentation's parameters (or False)
        check(dest, bool(data[dest]) if dest == "augment" else data[dest])
    if conflicts:
        raise ResumeConflict(f"{path}: " + "; ".join(conflicts) + " (a resumed run continues as it was "
                             "started: drop the flag, or train from scratch without --resume)")
    if "epochs" in given:
        config.epochs = int(given["epochs"])
    return config, data


def saved_augment(value):
    """The augmentation a checkpoint's ``meta["data"]["augment"]`` records: its parameters (a dict), True
    (older checkpoints: the command line's standard one) or False."""
    from .config import Augment
    if isinstance(value, dict):
        return Augment(**value)
    return Augment(rotation=10.0, translation=0.1, scale=0.1) if value else Augment()


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"{len(names)} classes ({shown})"


def check_same_classes(path: str | os.PathLike, saved: tuple[str, ...], dataset: str,
                       found: tuple[str, ...]) -> None:
    """Refuse to resume on a data set whose classes are not those the checkpoint was trained on."""
    if tuple(saved) != tuple(found):
        raise ResumeConflict(f"{path}: the data set {dataset} has {_names(tuple(found))}, but the checkpoint was "
                             f"trained on {_names(tuple(saved))} (resume on the data set it was trained on)")
