"""Fill in what a bare weights file does not record: input shape, class names, normalisation.

Guesses are always announced in ``bundle.warnings`` so the user can correct
them; a wrong input size would otherwise show as a baffling shape error later.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..input_format import SET_INPUT_FORMAT
from .state_dict import first_conv_in_channels

_TRY_SIZES = (32, 28, 64, 224)


def _forward_ok(model: nn.Module, shape: tuple[int, int, int]):
    """Output of one eval/no_grad pass on zeros, or None if the model rejects that shape."""
    was_training = model.training
    try:
        model.eval()  # BatchNorm statistics must not move because we looked
    except NotImplementedError:  # torch.export modules have no train/eval switch
        was_training = None
    try:
        with torch.no_grad():
            return model(torch.zeros(1, *shape))
    except Exception:  # noqa: BLE001 - any failure means "not this shape"
        return None
    finally:
        if was_training is not None:
            model.train(was_training)


def _introspected_shape(model: nn.Module):
    try:
        from ..introspect import find_input_shape
    except ImportError:
        return None
    try:
        shape = find_input_shape(model)
    except Exception:  # noqa: BLE001 - a guess that failed is just no guess
        return None
    if isinstance(shape, (tuple, list)) and len(shape) == 3 and all(isinstance(x, int) and x > 0 for x in shape):
        return tuple(shape)
    return None


def guess_input_shape(model: nn.Module, sd: dict, known=None) -> tuple[tuple[int, int, int], object]:
    """(shape, output of a test pass or None). ``known`` (from the file or the zoo options) wins."""
    if known is not None:
        return tuple(known), _forward_ok(model, tuple(known))
    shape = _introspected_shape(model)
    if shape is not None:
        return shape, _forward_ok(model, shape)
    channels = first_conv_in_channels(sd) or 1
    for size in _TRY_SIZES:
        out = _forward_ok(model, (channels, size, size))
        if out is not None:
            return (channels, size, size), out
    return (channels, 32, 32), None


def class_count(output, sd: dict) -> int | None:
    if isinstance(output, torch.Tensor) and output.dim() == 2:
        return int(output.shape[1])
    for t in reversed(list(sd.values())):
        if isinstance(t, torch.Tensor) and t.dim() == 2:
            return int(t.shape[0])
    return None


def guessed_metadata(model: nn.Module, sd: dict, *, known_shape=None, class_names=None):
    """(input_shape, class_names, mean, std, warnings) for a model whose file lacks them."""
    notes = []
    shape, out = guess_input_shape(model, sd, known_shape)
    if known_shape is None:
        notes.append(f"input shape guessed as {shape}" if out is not None else
                     f"no input size tried ({', '.join(map(str, _TRY_SIZES))}) fits the model; "
                     f"assuming {shape}: set the right one")
    k = class_count(out, sd)
    if class_names is None or (k is not None and len(class_names) != k):
        class_names = tuple(str(i) for i in range(k or 10))
        notes.append(f"class names not in the file: named 0..{len(class_names) - 1}")
    mean, std = (0.0,) * shape[0], (1.0,) * shape[0]
    notes.append("normalisation not in the file: assuming mean 0, std 1")
    warning = "Guessed what the file does not record: " + "; ".join(notes) + ". " + SET_INPUT_FORMAT
    return shape, tuple(class_names), mean, std, (warning,)
