"""Append-only numeric series with bounded memory.

Training can run for millions of steps; a Python list per curve would grow
without limit and a full copy per append would be quadratic. The buffer
doubles its capacity as needed; at ``cap`` rows it drops every other row
(keeping the newest), so memory stays bounded while the whole run stays
visible at a coarser resolution.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

# Rows of per-snapshot history a view keeps per table (older half decimated beyond): at 10
# snapshots/s that is 8 minutes at full resolution, then the whole run at a coarser one;
# still more points than a plot has pixels. Reached early, memory then stays flat.
HISTORY_CAP = 5_000
# Rows of per-step loss/accuracy the curves keep (same rule): LeNet-5 on the digits makes
# about 200 steps a second, so the cap is reached in minutes, at a few MB.
STEP_HISTORY_CAP = 50_000
# A history shorter than this is drawn with a dot on every point too (a lone point has no
# line; from a handful on, the line shows the trend). Not for longer: pyqtgraph rebuilds every
# dot on each setData and paints each one, and with one history row per snapshot the gradient
# view's five layers of dots lasted the first ~30 s of a run at several milliseconds a frame.
DOTS_BELOW = 5


class GrowableTable:
    def __init__(self, columns: int, cap: int = 1_000_000, dtype=np.float64):
        self._data = np.empty((256, columns), dtype=dtype)
        self._n = 0
        self.cap = cap
        self.decimations = 0   # how many times the older history was halved
        self.version = 0       # changes whenever the rows do (a plot skips re-setting unchanged data)

    def __len__(self) -> int:
        return self._n

    @property
    def data(self) -> np.ndarray:
        """A read-only view of the filled rows."""
        v = self._data[: self._n]
        v.flags.writeable = False
        return v

    def column(self, i: int) -> np.ndarray:
        return self.data[:, i]

    def append(self, rows) -> None:
        rows = np.asarray(rows, dtype=self._data.dtype).reshape(-1, self._data.shape[1])
        if len(rows) == 0:
            return
        while self._n + len(rows) > self.cap:
            keep = self._data[: self._n : 2].copy()
            self._data[: len(keep)] = keep
            self._n = len(keep)
            self.decimations += 1
            if len(rows) > self.cap // 2:
                rows = rows[-(self.cap // 2):]
        need = self._n + len(rows)
        if need > len(self._data):
            grown = np.empty((min(self.cap, max(need, 2 * len(self._data))), self._data.shape[1]),
                             dtype=self._data.dtype)  # never beyond the cap: memory stays bounded
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n: need] = rows
        self._n = need
        self.version += 1

    def replace_last(self, row) -> None:
        if self._n:
            self._data[self._n - 1] = row
            self.version += 1
        else:
            self.append(row)

    def clear(self) -> None:
        self._n = 0
        self.version += 1


def ema(x: np.ndarray, alpha: float, prev: float | None = None, block: int = 256) -> np.ndarray:
    """Exponential smoothing y[n] = a*y[n-1] + (1-a)*x[n], vectorised by blocks.

    y[-1] is ``prev`` (to extend an earlier result with new points) or x[0].

    Within a block, y = L @ x + a^(k+1) * y_prev with L[k, j] = (1-a) a^(k-j) (j <= k):
    a matrix product instead of a Python loop over a million points, and no
    a^-n terms that would overflow.
    """
    x = np.asarray(x, dtype=np.float64)
    if alpha <= 0 or len(x) == 0:
        return x.copy()
    L, carry = _ema_matrices(float(alpha), block)
    out = np.empty_like(x)
    prev = x[0] if prev is None else float(prev)
    for s in range(0, len(x), block):
        chunk = x[s: s + block]
        m = len(chunk)
        y = L[:m, :m] @ chunk + carry[:m] * prev
        out[s: s + m] = y
        prev = y[-1]
    return out


@lru_cache(maxsize=8)
def _ema_matrices(a: float, block: int) -> tuple[np.ndarray, np.ndarray]:
    """L and the carry weights for one alpha: built once, not per frame (65k powers each time)."""
    k = np.arange(block)
    diff = k[:, None] - k[None, :]
    L = np.where(diff >= 0, (1 - a) * a ** np.maximum(diff, 0), 0.0)
    carry = a ** (k + 1)
    L.flags.writeable = False
    carry.flags.writeable = False
    return L, carry
