"""The views' last guard before setImage.

Snapshots are already finite (the worker sanitises them), but one +inf pixel
in an ImageItem that a colour bar or histogram watches freezes the event loop
(PITFALLS.md), so every array is checked again here: cheap next to drawing.
"""
from __future__ import annotations

import numpy as np


def finite_float32(a) -> tuple[np.ndarray, int]:
    """(float32 array with NaN/inf replaced by 0, how many were replaced)."""
    arr = np.asarray(a, dtype=np.float32)
    ok = np.isfinite(arr)
    if ok.all():
        return arr, 0
    bad = int(arr.size - np.count_nonzero(ok))
    return np.where(ok, arr, np.float32(0.0)).astype(np.float32, copy=False), bad

