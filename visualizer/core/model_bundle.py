"""A model together with what is needed to feed it and name its outputs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn


@dataclass
class ModelBundle:
    """The unit that loaders return, the trainer trains and the inspector probes.

    ``mean``/``std`` are the per-channel normalisation applied after scaling
    pixels to [0, 1]; every path that feeds the model (training batches, a
    dataset probe sample, an opened image, a drawing) applies the same one.
    """

    model: nn.Module
    input_shape: tuple[int, int, int]          # (C, H, W) the model takes
    class_names: tuple[str, ...]
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    arch: str | None = None                    # zoo name, "file.py:Name", or None if unknown
    arch_options: dict[str, Any] = field(default_factory=dict)  # kwargs for architectures.build_model
    source: str | None = None                  # file it came from
    meta: dict[str, Any] = field(default_factory=dict)          # dataset, epochs, accuracy, ...
    warnings: tuple[str, ...] = ()             # shown to the user after loading (NaN weights, ...)
    probeable: bool = True                     # False for TorchScript: no hooks possible

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
