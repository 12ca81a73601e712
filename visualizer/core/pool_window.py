"""The window of a 2-D pooling step, module or call, and the winners of max pooling.

A pooling layer is an ``nn.MaxPool2d``-like module or an ``F.max_pool2d(x, 2)`` call in
``forward``: :func:`of_module` reads the module's attributes, ``functional_calls.pool_geometry``
the call's arguments, and both give the same :class:`PoolGeometry`. :func:`window` then
computes, on the one kept probe sample, what the Pooling view draws: kernel, stride,
padding and, for max pooling, the flat input index of each window's winner (recomputed
with ``return_indices=True``: cheaper than asking every training pass for indices).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


def pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


@dataclass(frozen=True)
class PoolGeometry:
    mode: str                              # "max" or "avg"
    kernel: tuple[int, int] = (1, 1)       # unused when adaptive
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False
    adaptive: bool = False                 # the window follows from the input and output sizes


@dataclass(frozen=True)
class PoolWindow:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    mode: str
    argmax: torch.Tensor | None            # (C', Ho, Wo) flat index into Hi*Wi (max pooling only)


def of_module(m: nn.Module) -> PoolGeometry | None:
    """The geometry of a 2-D pooling module (None for other modules and other pools)."""
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        stride = m.stride if m.stride not in (None, 0, ()) else m.kernel_size
        return PoolGeometry(mode="max" if isinstance(m, nn.MaxPool2d) else "avg", kernel=pair(m.kernel_size),
                            stride=pair(stride), padding=pair(m.padding),
                            dilation=pair(getattr(m, "dilation", 1)), ceil_mode=bool(m.ceil_mode))
    if isinstance(m, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
        return PoolGeometry(mode="max" if isinstance(m, nn.AdaptiveMaxPool2d) else "avg", adaptive=True)
    return None


def window(g: PoolGeometry, x: torch.Tensor, out_shape) -> PoolWindow | None:
    """The window of ``g`` on its kept input ``x`` (C, Hi, Wi) with output ``out_shape`` (C, Ho, Wo)."""
    if x.dim() != 3 or len(out_shape) != 3:
        return None
    hi, wi = int(x.shape[1]), int(x.shape[2])
    ho, wo = int(out_shape[1]), int(out_shape[2])
    argmax = None
    if g.adaptive:
        # The effective window (exact when the input divides evenly).
        sh, sw = max(hi // max(ho, 1), 1), max(wi // max(wo, 1), 1)
        kernel, stride, padding = (hi - (ho - 1) * sh, wi - (wo - 1) * sw), (sh, sw), (0, 0)
        if g.mode == "max":
            _, idx = F.adaptive_max_pool2d(x[None].float(), (ho, wo), return_indices=True)
            argmax = idx[0]
    else:
        kernel, stride, padding = g.kernel, g.stride, g.padding
        if g.mode == "max":
            _, idx = F.max_pool2d(x[None].float(), kernel, stride, padding, g.dilation, g.ceil_mode,
                                  return_indices=True)
            argmax = idx[0]
    return PoolWindow(kernel, stride, padding, g.mode, argmax)
