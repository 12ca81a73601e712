"""The input a model was trained with, where its file does not say: normalisation and class names.

Bare weights and ONNX files record neither, so a model opens fed its images as they are (mean 0,
std 1) with classes named 0..K-1; a model trained on ImageNet-normalised images then shows
wrong maps and predictions. The user gives the right ones (``--mean``/``--std``/``--class-names``
on the command line; the engine's ``set_input_format``, which the window does not offer yet);
this module checks them. A
class-names file is data from anywhere: bounded in size, read as text, never run.
"""
from __future__ import annotations

import json
import math
import os

from .errors import LoadError

# name -> (mean, std) per channel, as the datasets' usual recipes give them.
PRESETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "none (mean 0, std 1)": ((0.0,), (1.0,)),
    "MNIST": ((0.1307,), (0.3081,)),
    "CIFAR-10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "ImageNet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
# Said after what a loader had to guess: where the user gives it.
SET_INPUT_FORMAT = "On the command line, --mean, --std and --class-names give the ones it was trained with."
MAX_CLASS_FILE_BYTES = 4 * 1024 * 1024   # ImageNet's 21k names are under 1 MB
MAX_NAME_CHARS = 200


def presets_for(channels: int) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    """The presets that fit a model of ``channels`` input channels (one value fits any)."""
    return {name: (_spread(m, channels), _spread(s, channels)) for name, (m, s) in PRESETS.items()
            if len(m) in (1, channels)}


def parse_numbers(text: str) -> tuple[float, ...]:
    """``"0.485, 0.456 0.406"`` -> numbers; ValueError naming what is not one."""
    out = []
    for part in text.replace(",", " ").replace(";", " ").split():
        try:
            out.append(float(part))
        except ValueError:
            raise ValueError(f"'{part}' is not a number") from None
    return tuple(out)


def checked_input_format(channels: int, num_classes: int, mean, std, class_names=()) \
        -> tuple[tuple[float, ...], tuple[float, ...], tuple[str, ...]]:
    """(mean, std, class names) for a model of ``channels`` inputs and ``num_classes`` outputs.

    One mean or std value stands for every channel; class names are optional (``()`` keeps
    the model's). Raises ValueError with a sentence a user can act on.
    """
    mean, std = _per_channel("mean", mean, channels), _per_channel("std", std, channels)
    if any(v <= 0 for v in std):
        raise ValueError("every std must be above 0 (the input is divided by it)")
    names = tuple(str(n).strip() for n in class_names)
    if names:
        if len(names) != num_classes:
            raise ValueError(f"{len(names)} class names for a model with {num_classes} outputs")
        if not all(names):
            raise ValueError("a class name is empty")
        if max(len(n) for n in names) > MAX_NAME_CHARS:
            raise ValueError(f"a class name is over {MAX_NAME_CHARS} characters")
    return mean, std, names


def read_class_names(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names from a file: one a line (blank lines skipped), or JSON: a list of names, or an
    index -> name mapping (``{"0": "tench"}``, or torchvision's ``{"0": ["n01440764", "tench"]}``)."""
    p = os.fspath(path)
    try:
        size = os.path.getsize(p)
        if size > MAX_CLASS_FILE_BYTES:
            raise LoadError(p, f"is {size:,} bytes; a class-names file is at most {MAX_CLASS_FILE_BYTES:,}")
        with open(p, "rb") as f:
            text = f.read(MAX_CLASS_FILE_BYTES + 1).decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise LoadError(p, f"could not be read ({exc.strerror or exc})") from exc
    if text.lstrip().startswith(("[", "{")):
        try:
            names = _json_names(json.loads(text))
        except (ValueError, RecursionError) as exc:
            raise LoadError(p, f"is not a list of class names ({exc})",
                            "give one name a line, a JSON list, or a JSON index -> name mapping") from None
    else:
        names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise LoadError(p, "holds no class names")
    return names


def _json_names(data) -> tuple[str, ...]:
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict):
        try:
            keys = sorted(data, key=int)
        except (TypeError, ValueError):
            raise ValueError("its keys are not class numbers") from None
        if [int(k) for k in keys] != list(range(len(keys))):
            raise ValueError("its class numbers are not 0, 1, 2, ...")
        items = [data[k] for k in keys]
    else:
        raise ValueError("neither a list nor a mapping")
    names = []
    for item in items:
        if isinstance(item, list) and item and all(isinstance(v, str) for v in item):
            item = item[-1]        # [wordnet id, name]
        if not isinstance(item, (str, int, float)) or isinstance(item, bool):
            raise ValueError(f"{type(item).__name__} where a name should be")
        names.append(str(item))
    return tuple(names)


def _per_channel(what: str, values, channels: int) -> tuple[float, ...]:
    values = parse_numbers(values) if isinstance(values, str) else tuple(float(v) for v in values)
    if len(values) not in (1, channels):
        raise ValueError(f"{len(values)} {what} values for a model of {channels} input channel(s): "
                         f"give one, or one per channel")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"every {what} must be a finite number")
    if any(abs(v) > 1e6 for v in values):
        raise ValueError(f"a {what} of {max(values, key=abs):g} is not a normalisation of [0, 1] pixels")
    return _spread(values, channels)


def _spread(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    return tuple(values) * channels if len(values) == 1 else tuple(values)
