"""How long one feature-map frame takes: FeatureMapView vs a matplotlib subplot grid.

A frame is 256 channels of 56x56 (a mid-sized conv layer). pyqtgraph: the
view receives a new snapshot, draws it (one mosaic ImageItem with colormap and
colour bar) and the widget is painted synchronously. matplotlib (Agg): a 16x16
grid of imshow axes, each given its new map with set_data, then
fig.canvas.draw(), which is what a matplotlib-based live view would have to do.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/feature_map_frame.py [--frames N]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

C, H, W = 256, 56, 56


def make_snapshots(n: int):
    from tests.gui.snapshot_factory import make_probe, spatial_capture

    rng = np.random.default_rng(0)
    base = make_probe()
    snaps, raw = [], []
    for _ in range(n):
        maps = rng.normal(0, 1, (C, H, W)).astype(np.float32)
        cap = spatial_capture("conv", "conv", maps)
        snaps.append(dataclasses.replace(base, layers=(cap,)))
        raw.append(maps)
    return snaps, raw


def bench_pyqtgraph(snaps, frames: int) -> list[float]:
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from visualizer.gui.views import FeatureMapView

    view = FeatureMapView()
    view.resize(1400, 1000)
    view.set_layer("conv")
    view.show()
    app.processEvents()
    times = []
    for i in range(frames + 5):
        t0 = time.perf_counter()
        view.show_probe(snaps[i % len(snaps)])
        view.flush()
        view.graphics.viewport().repaint()   # synchronous paint of the scene
        dt = time.perf_counter() - t0
        if i >= 5:                           # warm-up: first paints build caches
            times.append(dt)
    # The ImageItem converts to a QImage only when painted: proof the timed frames were drawn.
    assert view.mosaic_item.qimage is not None, "the mosaic was never painted"
    view.close()
    return times


def bench_matplotlib(raw, frames: int) -> list[float]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(16, 16, figsize=(10, 10), dpi=100)
    images = []
    for ax, m in zip(axes.ravel(), raw[0]):
        images.append(ax.imshow(m, cmap="viridis", vmin=-4, vmax=4))
        ax.set_axis_off()
    fig.canvas.draw()
    times = []
    for i in range(frames + 2):
        maps = raw[i % len(raw)]
        t0 = time.perf_counter()
        for im, m in zip(images, maps):
            im.set_data(m)
        fig.canvas.draw()
        dt = time.perf_counter() - t0
        if i >= 2:
            times.append(dt)
    plt.close(fig)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--mpl-frames", type=int, default=8)
    args = ap.parse_args()
    snaps, raw = make_snapshots(4)
    pg_t = bench_pyqtgraph(snaps, args.frames)
    mpl_t = bench_matplotlib(raw, args.mpl_frames)
    pg_ms = 1000 * statistics.median(pg_t)
    mpl_ms = 1000 * statistics.median(mpl_t)
    pg_p90 = 1000 * float(np.percentile(pg_t, 90))
    print(f"frame: {C} channels x {H}x{W}")
    print(f"pyqtgraph FeatureMapView: {pg_ms:.2f} ms/frame (median of {len(pg_t)}, p90 {pg_p90:.2f} ms)")
    print(f"matplotlib 16x16 imshow grid (Agg): {mpl_ms:.1f} ms/frame (median of {len(mpl_t)})")
    print(f"ratio: {mpl_ms / pg_ms:.1f}x faster")
    ok = pg_ms <= 5.0 and mpl_ms / pg_ms >= 40.0
    print("target (issue 12: <= 5 ms and >= 40x): " + ("met" if ok else "NOT met"))


if __name__ == "__main__":
    main()
