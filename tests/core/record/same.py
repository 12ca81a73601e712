"""Comparing a decoded value with its original: exact, or within the compact encoding's stated bound."""
import dataclasses
import math

import numpy as np

from visualizer.core.record.encoding import COMPACT_MIN_ELEMENTS

# encoding.py's stated precision of compacted arrays, plus float32 rounding of the scaling itself.
REL, ABS = 2.0 ** -11, 2.0 ** -25


def walk(a, b, path="", compacted=None):
    """Assert ``b`` (decoded) equals ``a``; float32 arrays big enough are compared with the compact bound.

    ``compacted`` collects the paths of the arrays compared that way.
    """
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, np.ndarray):
        assert a.shape == b.shape and a.dtype == b.dtype, path
        assert not b.flags.writeable and b.flags.c_contiguous, path
        if compacted is not None and a.dtype == np.float32 and a.size >= COMPACT_MIN_ELEMENTS:
            bound = REL * np.abs(a) + ABS * float(np.max(np.abs(a))) + 1e-7 * np.abs(a)
            assert np.all(np.abs(b.astype(np.float64) - a) <= bound), path
            compacted.append(path)
        else:
            assert np.array_equal(a, b, equal_nan=True), path
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            if f.init:
                walk(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}", compacted)
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{path}[{i}]", compacted)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            walk(a[k], b[k], f"{path}.{k}", compacted)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path
