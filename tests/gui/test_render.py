"""Headless render: every view written as a PNG without a display."""
from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QImage

from tests.gui.snapshot_factory import make_probe, make_training
from visualizer.gui.render import render_views

EXPECTED = ["feature_maps", "overview", "filters", "pooling", "activations", "gradients", "probabilities", "curves"]


def _pixels(path) -> np.ndarray:
    img = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB32)
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    return np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)[:, : img.width(), :3]


def test_render_views_writes_one_nonblank_png_per_view(qapp, tmp_path):
    paths = render_views(make_probe(), make_training(norms=(1e-9, 1e-4, 1e-2, 0.3, 5e2)), tmp_path / "out",
                         size=(800, 500))
    assert [p.stem for p in paths] == EXPECTED
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        px = _pixels(p)
        assert px.shape[:2] == (500, 800), p.name
        # Not an empty canvas: a real drawing has many distinct colours.
        rgb = (px[..., 0].astype(np.uint32) << 16) | (px[..., 1].astype(np.uint32) << 8) | px[..., 2]
        assert len(np.unique(rgb)) > 20, p.name


def test_render_without_training_and_with_nonfinite_maps(qapp, tmp_path):
    paths = render_views(make_probe(inject_nonfinite=True), None, tmp_path, size=(600, 400), layer="C3")
    assert len(paths) == len(EXPECTED) and all(p.stat().st_size > 1000 for p in paths)
