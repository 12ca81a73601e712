"""The filter view's per-filter scale: each filter drawn on its own symmetric range."""
from __future__ import annotations

import numpy as np
import pytest

from tests.gui.snapshot_factory import make_probe
from visualizer.core.recipes import FILTER_SCALES, RECIPES
from visualizer.gui.views.filters import MODES, SCALES, FilterView


def test_recipe_words_are_the_views_words():
    assert SCALES == FILTER_SCALES
    for r in RECIPES.values():
        assert set(r.filter_modes) <= set(MODES) and r.filter_scale in SCALES


@pytest.mark.parametrize("layer", ["C1", "C3"])   # one input channel (a grid of kernels), six (rows of them)
def test_per_filter_scale_gives_each_filter_its_own_range(qtbot, layer):
    probe = make_probe()
    cap = next(f for f in probe.filters if f.name == layer)
    v = FilterView()
    qtbot.addWidget(v)
    v.resize(700, 500)
    v.set_layer(cap.name)
    v.show_probe(probe)
    v.flush()
    per_layer = v.item.image.copy()
    lo, hi = v.item.levels
    biggest = np.abs(per_layer).max()     # per layer: one symmetric range that just holds the largest |w|
    assert lo == -hi and biggest <= hi <= 1.1 * biggest and tuple(v.colorbar.levels()) == (lo, hi)
    v.set_scale("per filter")
    v.flush()
    img = v.item.image
    assert tuple(v.item.levels) == (-1.0, 1.0) and tuple(v.colorbar.levels()) == (-1.0, 1.0)
    w = cap.weight
    o, i, kh, kw = w.shape
    if i == 1:   # a grid of single kernels: every tile reaches exactly +-1 at its own largest |w|
        cols = int(np.ceil(np.sqrt(o)))
        for k in range(o):
            r, c = divmod(k, cols)
            t = img[r * (kh + 1): r * (kh + 1) + kh, c * (kw + 1): c * (kw + 1) + kw]
            assert np.abs(t).max() == pytest.approx(1.0)
            assert np.allclose(t, w[k, 0] / np.abs(w[k, 0]).max(), atol=1e-6)
    else:        # rows = output filters: each row's largest |value| is 1
        for k in range(o):
            row = img[k * (kh + 1): k * (kh + 1) + kh]
            assert np.abs(row).max() == pytest.approx(1.0)
    assert "each filter scaled to its own range" in v.note.text()
    with pytest.raises(ValueError):
        v.set_scale("per pixel")
    v.close()


def test_the_colour_bar_keeps_its_levels_while_the_weights_change_a_little(qtbot):
    """Weights move a little every snapshot: the bar (and the image, which uses its levels) keeps a
    steady symmetric range, is not told it again, and re-scales when the weights outgrow it."""
    import dataclasses
    base = make_probe()
    cap = next(f for f in base.filters if f.name == "C1")
    v = FilterView()
    qtbot.addWidget(v)
    v.resize(700, 500)
    v.set_layer("C1")
    told = []
    set_levels = v.colorbar.setLevels
    v.colorbar.setLevels = lambda *a, **k: (told.append(a), set_levels(*a, **k))

    def show(scale):
        c = dataclasses.replace(cap, weight=cap.weight * np.float32(scale))
        v.show_probe(dataclasses.replace(base, filters=(c,)))
        v.flush()
        return tuple(v.colorbar.levels()), tuple(v.item.levels)

    bar, image = show(1.0)
    assert bar == pytest.approx(image) and bar[0] == -bar[1]
    assert bar[1] >= float(np.abs(cap.weight).max())
    n = len(told)
    assert show(0.98) == (bar, image) and show(1.0) == (bar, image)
    assert len(told) == n                                 # not re-told the same levels
    grown, grown_image = show(1.5)
    assert grown[1] >= 1.5 * float(np.abs(cap.weight).max()) and grown == pytest.approx(grown_image)
    assert len(told) == n + 1
    v.close()
