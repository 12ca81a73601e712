"""Numpy versions of the activation functions and their derivatives.

The views draw the curve a layer applies, over the range its inputs really
take, so each function needs f(x) and f'(x) without torch. Parameters
(negative_slope, alpha, approximate) come from ActivationStats.params.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

Fn = Callable[[np.ndarray, dict], np.ndarray]


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))   # no overflow for large |x|


def _erf(x):
    # numpy has no erf; math.erf per element is fine for a few hundred plot points.
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def gelu(x, p):
    if p.get("approximate") in ("tanh", 1.0):
        c = math.sqrt(2.0 / math.pi)
        return 0.5 * x * (1.0 + np.tanh(c * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_grad(x, p):
    if p.get("approximate") in ("tanh", 1.0):
        c = math.sqrt(2.0 / math.pi)
        u = c * (x + 0.044715 * x ** 3)
        t = np.tanh(u)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t ** 2) * c * (1.0 + 3 * 0.044715 * x ** 2)
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * x ** 2) / math.sqrt(2.0 * math.pi)
    return cdf + x * pdf


FUNCTIONS: dict[str, tuple[Fn, Fn]] = {
    "relu": (lambda x, p: np.maximum(x, 0.0), lambda x, p: (x > 0).astype(np.float64)),
    "relu6": (lambda x, p: np.clip(x, 0.0, 6.0), lambda x, p: ((x > 0) & (x < 6)).astype(np.float64)),
    "leaky_relu": (lambda x, p: np.where(x > 0, x, p.get("negative_slope", 0.01) * x),
                   lambda x, p: np.where(x > 0, 1.0, p.get("negative_slope", 0.01))),
    "elu": (lambda x, p: np.where(x > 0, x, p.get("alpha", 1.0) * np.expm1(np.minimum(x, 0))),
            lambda x, p: np.where(x > 0, 1.0, p.get("alpha", 1.0) * np.exp(np.minimum(x, 0)))),
    "gelu": (gelu, gelu_grad),
    "silu": (lambda x, p: x * _sigmoid(x), lambda x, p: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x)))),
    "sigmoid": (lambda x, p: _sigmoid(x), lambda x, p: _sigmoid(x) * (1.0 - _sigmoid(x))),
    "tanh": (lambda x, p: np.tanh(x), lambda x, p: 1.0 - np.tanh(x) ** 2),
}


def evaluate(function: str, x: np.ndarray, params=()) -> tuple[np.ndarray, np.ndarray] | None:
    """(f(x), f'(x)) for a known function name, else None."""
    pair = FUNCTIONS.get(function)
    if pair is None:
        return None
    p = dict(params)
    x = np.asarray(x, dtype=np.float64)
    f, df = pair
    return np.asarray(f(x, p), dtype=np.float64), np.asarray(df(x, p), dtype=np.float64)


def plot_range(lo: float, hi: float, function: str) -> tuple[float, float]:
    """The live input range, padded, and wide enough to show the function's shape."""
    lo = lo if np.isfinite(lo) else -1.0
    hi = hi if np.isfinite(hi) else 1.0
    span = max(hi - lo, 1e-3)
    lo, hi = lo - 0.1 * span, hi + 0.1 * span
    if function in ("sigmoid", "tanh", "silu", "gelu", "elu"):
        lo, hi = min(lo, -3.0), max(hi, 3.0)   # the saturating shape must be visible
    else:
        lo, hi = min(lo, -1.0), max(hi, 1.0)   # the kink at 0 must be visible
    return lo, hi
