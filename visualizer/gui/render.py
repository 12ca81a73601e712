"""Headless rendering: every view as a PNG, without a display (slides, papers, CI).

Runs under QT_QPA_PLATFORM=offscreen (set here when no QApplication exists
yet and no display is configured). Each view is fed the same snapshots the
live window would get, shown off-screen at the requested size, drawn once
synchronously and grabbed.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from visualizer.core.snapshot import EpochEnd, ProbeSnapshot, TrainingSnapshot


def _application():
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QApplication(sys.argv[:1])
    return app


def _default_layers(probe: ProbeSnapshot) -> dict[str, str | None]:
    """Which layer each layer-dependent view shows when the caller names none."""
    from .views.feature_maps import default_layer

    fm = default_layer(probe)
    pool = next((c.name for c in probe.layers if c.pool is not None), None)
    conv = probe.filters[0].name if probe.filters else None
    return {"feature_maps": fm.name if fm else None, "pooling": pool, "filters": conv}


def render_views(probe: ProbeSnapshot, training: TrainingSnapshot | None, out_dir, size=(1200, 800),
                 *, layer: str | None = None, presentation: bool = False,
                 epochs: tuple[EpochEnd, ...] = ()) -> list[Path]:
    """Write one PNG per view into ``out_dir`` and return their paths, in view order.

    ``layer`` (optional) selects the layer for the layer-dependent views;
    by default the feature maps show the first conv layer, pooling the first
    pooling layer and filters the first captured conv. ``epochs``: the validation
    points of the curves (a recorded run's epoch ends up to the shown step).
    """
    app = _application()
    from PyQt6.QtCore import Qt

    from .views import (
        ActivationView,
        CurvesView,
        FeatureMapView,
        FilterView,
        GradientView,
        OverviewStripView,
        PoolingView,
        ProbabilityView,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chosen = _default_layers(probe)
    views = [
        ("feature_maps", FeatureMapView, layer or chosen["feature_maps"]),
        ("overview", OverviewStripView, None),
        ("filters", FilterView, layer or chosen["filters"]),
        ("pooling", PoolingView, layer or chosen["pooling"]),
        ("activations", ActivationView, None),
        ("gradients", GradientView, None),
        ("probabilities", ProbabilityView, None),
        ("curves", CurvesView, None),
    ]
    paths = []
    for slug, cls, name in views:
        view = cls()
        try:
            view.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
            view.resize(*size)
            view.set_presentation(presentation)
            view.set_layer(name)
            if training is not None:
                view.show_training(training)
            for ev in epochs:
                view.show_epoch(ev)
            view.show_probe(probe)
            view.show()
            app.processEvents()   # lay out at the final size before drawing
            view.flush()
            app.processEvents()
            path = out / f"{slug}.png"
            view.export_png(path)
            paths.append(path)
        finally:
            view.close()
            view.deleteLater()
    app.processEvents()
    return paths
