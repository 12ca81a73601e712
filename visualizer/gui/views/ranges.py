"""Keep a live plot's data in view without pyqtgraph's per-frame auto-range.

pyqtgraph's auto-range re-fits the view to the data on every ``setData`` and
does so lazily, during the paint: the range then changes in the middle of
painting, every axis regenerates its ticks and text, and the whole plot is
painted a second time. For data that grows a little each frame (a training
curve, a histogram) that was most of a frame's cost.

``RangeFollower`` re-ranges only when the data leaves the current range or
fills too little of it, with headroom so that the next frames fit: a curve
over a growing step axis re-ranges each time the run nearly doubles, not every frame.
It stops following when the user pans or zooms, and follows again when the
plot's "A" (auto-range) button or "View all" is used.
"""
from __future__ import annotations

import math

import pyqtgraph as pg

Bounds = tuple[float, float] | None

# A growing step axis gets room for 90% more steps: it re-ranges each time the run nearly
# doubles, and each re-range re-ticks the axes (1-2 ms each, in the next paint).
STEP_AXIS = (0.0, 0.9)


ROOM_IN_SNAPSHOTS = 10   # a young run's step axis spans at least this many snapshots' worth of steps


def step_bounds(first: float, last: float, snap=None) -> tuple[float, float]:
    """The bounds a growing step axis follows: the data's, and at least a few snapshots' steps wide.

    ``snap``: the latest TrainingSnapshot. The width is at least ROOM_IN_SNAPSHOTS times the steps
    it brought (its history rows), and at most one epoch (``batches_per_epoch``; 0 or no snapshot:
    the data's bounds). A fresh run at full speed no longer doubles its step axes (re-ticking them)
    four or five times in its first seconds, while a run stepped a batch at a time still fills the plot.
    """
    epoch = getattr(snap, "batches_per_epoch", 0) or 0
    history = getattr(snap, "history", None)
    per_snapshot = len(history) if history is not None else 0
    room = min(epoch, ROOM_IN_SNAPSHOTS * per_snapshot)
    return float(first), max(float(last), float(first) + room)


def needs_refit(lo: float, hi: float, current: tuple[float, float], keep: float) -> bool:
    """Data [lo, hi] is outside the shown range, or fills less than ``keep`` of it."""
    a, b = current
    return lo < a or hi > b or (hi - lo) < keep * (b - a)


def padded(lo: float, hi: float, below: float, above: float, minimum_span: float = 1e-9) -> tuple[float, float]:
    span = hi - lo
    if span <= minimum_span:   # a flat series (one point, a constant): centre it in a unit-ish window
        half = max(abs(lo) * 0.05, 0.5 if lo == 0 else 1e-6)
        return lo - half, hi + half
    return lo - below * span, hi + above * span


class RangeFollower:
    """Sets ``vb``'s x and/or y range from data bounds given each frame, with hysteresis.

    ``headroom=(below, above)`` per axis is the fraction of the data span added
    when re-ranging; ``keep`` is how little of the range the data may fill
    before the view shrinks back to it. ``y_floor``: once the data comes down close to
    it (its low end nearer to the floor than half its span: a loss falling towards 0),
    the y range starts at the floor, and a new low no longer re-ranges the plot.
    """

    def __init__(self, vb: pg.ViewBox, *, x: tuple[float, float] | None = (0.0, 0.25),
                 y: tuple[float, float] | None = (0.05, 0.05), keep: float = 0.5,
                 y_floor: float | None = None):
        self.vb = vb
        self.headroom = (x, y)
        self.keep = keep
        self.y_floor = y_floor
        self.follow = True
        self.refits = 0     # how often the range was actually changed (tests, profiling)
        self._force = True  # the first update fits
        vb.disableAutoRange(axis=_axis(x is not None, y is not None))
        vb.sigRangeChangedManually.connect(self._user_moved)

    def watch(self, other: pg.ViewBox) -> None:
        """A linked view the user may also pan: that too ends following."""
        other.sigRangeChangedManually.connect(self._user_moved)

    def _user_moved(self, *_) -> None:
        self.follow = False

    def reset(self) -> None:
        """Follow again and refit on the next update (new data, new model)."""
        self.follow = True
        self._force = True

    def update(self, x: Bounds = None, y: Bounds = None) -> bool:
        """Re-range if needed; returns True when the range changed."""
        vb = self.vb
        ax_x, ax_y = self.headroom[0] is not None, self.headroom[1] is not None
        state = vb.state["autoRange"]
        if (ax_x and state[0]) or (ax_y and state[1]):
            # pyqtgraph's own auto-range was switched back on ("A" button, "View all"):
            # the user wants the data in view; take over again, without the per-frame cost.
            vb.disableAutoRange(axis=_axis(ax_x, ax_y))
            self.reset()
        if not self.follow:
            return False
        (x0, x1), (y0, y1) = vb.viewRange()
        kw = {}
        for name, bounds, current, room in (("xRange", x, (x0, x1), self.headroom[0]),
                                            ("yRange", y, (y0, y1), self.headroom[1])):
            if room is None or bounds is None:
                continue
            lo, hi = float(bounds[0]), float(bounds[1])
            if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
                continue
            target = padded(lo, hi, *room)
            floor = self.y_floor if name == "yRange" else None
            if floor is not None and floor <= lo and lo - floor < 0.5 * (hi - lo):
                target = (floor, target[1])
            if self._force or (needs_refit(lo, hi, current, self.keep) and not _same(target, current)):
                kw[name] = target   # (a flat series fills none of its range: refit once, not per frame)
        self._force = False
        if not kw:
            return False
        vb.setRange(padding=0, disableAutoRange=False, **kw)
        self.refits += 1
        return True


def _same(a: tuple[float, float], b: tuple[float, float]) -> bool:
    span = max(abs(a[1] - a[0]), abs(b[1] - b[0]), 1e-300)
    return abs(a[0] - b[0]) <= 1e-6 * span and abs(a[1] - b[1]) <= 1e-6 * span


def _axis(x: bool, y: bool):
    if x and y:
        return None     # both
    return pg.ViewBox.XAxis if x else pg.ViewBox.YAxis
