"""Make data safe for ``torch.load(weights_only=True)``: tensors and plain Python only.

Numpy arrays and scalars (e.g. a stray ``np.random.get_state()``) would make the
whole checkpoint unloadable without running code, so they are converted here
at save time, and anything else is refused with the key path that holds it.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

_SCALARS = (bool, int, float, str, type(None))


def to_weights_only(obj: Any, where: str = "") -> Any:
    """A copy of ``obj`` whose leaves are tensors, plain scalars, ``torch.dtype``/``torch.device``/``torch.Size``."""
    if isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj, copy=True))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (torch.dtype, torch.device, torch.Size)):
        return obj
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"cannot save key {k!r} at {where or 'top level'}: keys must be str or int")
            out[k] = to_weights_only(v, f"{where}.{k}" if where else str(k))
        return out
    if isinstance(obj, (list, tuple)):
        items = [to_weights_only(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(f"cannot save {type(obj).__name__} at {where or 'top level'}: "
                    "only tensors, numbers, strings, lists and dicts load safely")


def to_plain_meta(obj: Any) -> Any:
    """Display metadata (dataset, accuracy, ...) as JSON-able plain types; odd values become strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, np.generic):
        return to_plain_meta(obj.item())
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return to_plain_meta(obj.item())
    if isinstance(obj, dict):
        return {str(k): to_plain_meta(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain_meta(v) for v in obj]
    return str(obj)
