"""Live health during training: figures fed as the trainer measures them, a new flag reported once.

What the trainer already measures costs nothing more to judge: every snapshot carries
each weighted layer's gradient norm, weight norm and update/weight ratio (from the two
consecutive steps around it), so :meth:`HealthMonitor.feed_gradients` (or
``feed_snapshot``) needs only those records. Dead and saturated units need whole
batches, not the one probe sample: the training step's probe can be armed with a
``measure.BatchActivationObserver`` and its sums fed to :meth:`feed_activations`; they
are collected until at least ``min_samples`` samples are in (several small training
batches), and only then judged.

Each feed returns the :class:`HealthAlert` s of flags that were not there before; a flag
that stays is not reported again, and one that has been gone for ``clear_after``
consecutive measurements may be reported anew (so a figure hovering at its threshold does
not flood the status bar). numpy only: it can run beside the trainer or in the window.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from .activations import ActivationBatch, merge_batches
from .records import DEFAULT_THRESHOLDS, HealthAlert, HealthReport, LayerHealth, Thresholds, alert_text
from .report import gradient_figures, make_rows

MIN_SAMPLES = 256
CLEAR_AFTER = 3


class HealthMonitor:
    """Accumulates one model's live figures; see the module docstring."""

    def __init__(self, rows: Sequence[LayerHealth], thresholds: Thresholds = DEFAULT_THRESHOLDS, *,
                 min_samples: int = MIN_SAMPLES, clear_after: int = CLEAR_AFTER):
        """``rows``: one per layer with name, kind, function and trainable set (``measure.health_rows``)."""
        self.thresholds = thresholds
        self.min_samples = max(1, int(min_samples))
        self.clear_after = max(1, int(clear_after))
        self._template = tuple(rows)
        self._frozen = {r.name for r in rows if r.trainable is False}
        self.reset()

    def reset(self) -> None:
        """Forget every figure and reported flag (new weights, a new run)."""
        self._rows: dict[str, LayerHealth] = {r.name: r for r in self._template}
        self._window: dict[str, ActivationBatch] = {}
        self._active: set[tuple[str, str]] = set()
        self._clean: dict[tuple[str, str], int] = {}
        self._step: int | None = None
        self._samples = 0

    # ------------------------------------------------------------------ feeding

    def feed_gradients(self, step: int, stats: Iterable) -> tuple[HealthAlert, ...]:
        """``stats``: the ``GradientStats`` of one training snapshot (all weighted layers of one step)."""
        grads = gradient_figures(stats, self._frozen)
        if not grads:
            return ()
        self._step = int(step)
        self._update(make_rows(self._rows.values(), {}, grads, self.thresholds))
        return self._alerts()

    def feed_snapshot(self, snap) -> tuple[HealthAlert, ...]:
        """A ``TrainingSnapshot``: its gradient figures (activation figures come from batches)."""
        return self.feed_gradients(snap.step, snap.gradients)

    def feed_activations(self, step: int, batches: Mapping[str, ActivationBatch]) -> tuple[HealthAlert, ...]:
        """One training batch's activation sums (``BatchActivationObserver.take()``).

        Judged once ``min_samples`` samples have been collected since the last verdict.
        """
        if not batches:
            return ()
        self._step = int(step)
        self._window = merge_batches(self._window, dict(batches))
        n = min(b.samples for b in self._window.values())
        if n < self.min_samples:
            return ()
        window, self._window = self._window, {}
        self._samples = n
        self._update(make_rows(self._rows.values(), window, {}, self.thresholds))
        return self._alerts()

    def feed_report(self, report: HealthReport) -> tuple[HealthAlert, ...]:
        """A whole measured report (``measure.measure_health`` run now and then, e.g. at an epoch's end)."""
        if report.step is not None:
            self._step = report.step
        self._samples = max(self._samples, report.samples)
        self._update(report.layers)
        return self._alerts()

    # ------------------------------------------------------------------ results

    @property
    def report(self) -> HealthReport:
        return HealthReport(layers=tuple(self._rows.values()), samples=self._samples, source="training",
                            step=self._step, optimizer="the training run's own steps", thresholds=self.thresholds)

    @property
    def flagged_layers(self) -> dict[str, tuple[str, ...]]:
        """{layer: its flags} of every layer flagged now (for marking the layer tree)."""
        return {r.name: r.flags for r in self._rows.values() if r.flags}

    def _update(self, rows: Iterable[LayerHealth]) -> None:
        for r in rows:
            if r.name in self._rows or not self._template:
                self._rows[r.name] = r

    def _alerts(self) -> tuple[HealthAlert, ...]:
        now = {(r.name, f) for r in self._rows.values() for f in r.flags}
        new = []
        for r in self._rows.values():
            for f in r.flags:
                key = (r.name, f)
                self._clean.pop(key, None)
                if key not in self._active:
                    self._active.add(key)
                    new.append(HealthAlert(layer=r.name, flag=f, step=self._step, message=alert_text(r, f)))
        for key in list(self._active - now):
            self._clean[key] = self._clean.get(key, 0) + 1
            if self._clean[key] >= self.clear_after:
                self._active.discard(key)
                del self._clean[key]
        return tuple(new)
