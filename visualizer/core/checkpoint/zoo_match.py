"""Rebuild a zoo architecture that fits a bare state dict.

A state dict does not record how its model was built. The shapes do tell most
of it: in_channels from the first conv, the class count from the last linear
layer, BatchNorm from running statistics, width from the first conv's filter
count. Input size changes some shapes (LeNet's C5 kernel, a flattened
classifier), so a few common sizes are tried; the first exact fit wins.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import LoadError
from .state_dict import first_conv_in_channels, first_conv_out_channels, last_linear_out_features, load_into_new_model

_INPUT_SIZES = (28, 32, 64, 224)


def _build(path: Path, arch: str, options: dict[str, Any]) -> nn.Module:
    from ..architectures import ARCHITECTURES, build_model

    if arch not in ARCHITECTURES:
        raise LoadError(path, f"unknown architecture {arch!r}", f"choose one of {', '.join(ARCHITECTURES)}")
    try:
        return build_model(arch, **options)
    except (TypeError, ValueError) as e:   # also options that would build a model over 2 GB
        raise LoadError(path, f"cannot build {arch} with options {options}: {e}",
                        "the file's architecture options are damaged or far too large") from e
    except (RuntimeError, MemoryError) as e:  # e.g. the allocator refusing a huge layer
        raise LoadError(path, f"cannot build {arch} with options {options}: out of memory ({e})",
                        "the file's architecture options are damaged or far too large") from e


def inferred_options(sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    cin, k = first_conv_in_channels(sd), last_linear_out_features(sd)
    if cin:
        opts["in_channels"] = cin
    if k:
        opts["num_classes"] = k
    opts["batchnorm"] = any(key.endswith("running_mean") for key in sd)
    return opts


def build_matching(path: Path, arch: str, arch_options: dict | None,
                   sd: dict[str, torch.Tensor]) -> tuple[nn.Module, dict[str, Any], bool]:
    """(model, options used, options_were_inferred). Given options are used as they are."""
    if arch_options:
        opts = dict(arch_options)
        return _build(path, arch, opts), opts, False

    from ..architectures import ARCHITECTURES

    base = inferred_options(sd)
    spec = ARCHITECTURES.get(arch)
    if spec is None:
        _build(path, arch, base)  # raises the "unknown architecture" error
    widths = [spec.default_width]
    probe = _build(path, arch, {**base, "width": 1.0, "input_size": spec.default_input_size})
    got, ref = first_conv_out_channels(sd), first_conv_out_channels(probe.state_dict())
    if got and ref:
        widths.insert(0, round(got / ref, 4))
    del probe
    sizes = [spec.default_input_size] + [s for s in _INPUT_SIZES if s != spec.default_input_size]
    first_failure = None
    for width in dict.fromkeys(widths):
        for size in sizes:
            opts = {**base, "width": width, "input_size": size}
            try:
                model = _build(path, arch, opts)
            except LoadError:
                continue
            # The test PyTorch itself applies: old BatchNorm files without num_batches_tracked fit.
            fit = load_into_new_model(model, sd)
            if fit.ok:
                return model, opts, True
            if first_failure is None:
                first_failure = (opts, fit.describe())
            if fit.missing or fit.unexpected:
                break  # a different layer set: another input size will not fix it
    opts, text = first_failure or (base, "no options could build it")
    raise LoadError(path, f"the weights do not fit {arch} ({text})",
                    "choose the architecture the weights were saved from, or give its options")
