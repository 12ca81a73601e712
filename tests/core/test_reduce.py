import numpy as np
import pytest

from visualizer.core.reduce import channel_levels, grid_shape, histogram, levels_of, make_mosaic, sanitize


def test_sanitize_replaces_and_counts_nonfinite():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 2.0, 1e300], dtype=np.float64)
    out, n_bad = sanitize(a)
    assert n_bad == 4  # 1e300 overflows float32 to inf
    assert out.dtype == np.float32 and not out.flags.writeable
    np.testing.assert_array_equal(out, [1, 0, 0, 0, 2, 0])
    assert np.isfinite(out).all()


def test_sanitize_copies():
    a = np.ones(3, np.float32)
    out, _ = sanitize(a)
    a[0] = 5
    assert out[0] == 1


def test_mosaic_geometry_and_tiles():
    c, h, w = 10, 3, 4
    maps = np.arange(c * h * w, dtype=np.float32).reshape(c, h, w)
    m = make_mosaic(maps, pad=1)
    assert (m.rows, m.cols) == grid_shape(c, h, w)
    assert m.rows * m.cols >= c and (m.rows - 1) * m.cols < c
    assert m.image.shape == (m.rows * (h + 1) - 1, m.cols * (w + 1) - 1)
    assert not m.image.flags.writeable
    # every tile holds its channel, and tile_at maps its pixels back to it
    for i in range(c):
        r, col = divmod(i, m.cols)
        y, x = r * (h + 1), col * (w + 1)
        np.testing.assert_array_equal(m.image[y:y + h, x:x + w], maps[i])
        assert m.tile_at(y + h - 1, x + w - 1) == i
    # padding row/col and the empty cells at the end are not tiles
    assert m.tile_at(h, 0) is None
    assert m.tile_at(0, w) is None
    assert m.tile_at(-1, 0) is None
    if m.rows * m.cols > c:
        last = m.rows * m.cols - 1
        r, col = divmod(last, m.cols)
        assert m.tile_at(r * (h + 1), col * (w + 1)) is None
    # padding: the minimum of non-negative maps, 0 (the neutral middle) of signed ones
    assert m.image[h, 0] == (0.0 if maps.min() < 0 else maps.min())


def test_mosaic_padding_is_neutral_for_signed_and_bottom_for_positive_maps():
    signed = np.linspace(-3, 5, 4 * 3 * 3, dtype=np.float32).reshape(4, 3, 3)
    assert make_mosaic(signed).image[3, 0] == 0.0
    positive = signed - signed.min() + 2
    assert make_mosaic(positive).image[3, 0] == positive.min()


def test_mosaic_aspect_wide_tiles_fewer_columns():
    r_sq, c_sq = grid_shape(16, 8, 8)
    assert (r_sq, c_sq) == (4, 4)
    r_w, c_w = grid_shape(16, 2, 32)   # very wide tiles: stack them
    assert c_w < r_w
    img_h, img_w = r_w * 2, c_w * 32
    assert 0.25 < img_h / img_w < 4


def test_mosaic_sanitizes_and_keeps_channel_ids():
    maps = np.zeros((2, 2, 2), np.float32)
    maps[1, 0, 0] = np.nan
    m = make_mosaic(maps, channels=(5, 9))
    assert np.isfinite(m.image).all()
    assert m.channels == (5, 9)
    with pytest.raises(ValueError):
        make_mosaic(maps, channels=(1,))


def test_levels_signed_symmetric():
    lv = levels_of(np.array([-1.0, 3.0]))
    assert lv.signed and lv.low == -3.0 and lv.high == 3.0
    lv = levels_of(np.array([1.0, 3.0]))
    assert not lv.signed and (lv.low, lv.high) == (1.0, 3.0)
    lv = levels_of(np.array([1.0, 3.0]), signed=True)
    assert (lv.low, lv.high) == (-3.0, 3.0)


def test_levels_guard_zero_range_and_nonfinite():
    lv = levels_of(np.zeros(5))
    assert lv.high > lv.low
    lv = levels_of(np.zeros(5), signed=True)
    assert lv.high > lv.low and lv.low == -lv.high
    lv = levels_of(np.array([np.nan, 2.0, np.inf]))
    assert lv.low == 2.0 and lv.high > 2.0
    lv = levels_of(np.array([]))
    assert lv.high > lv.low


def test_channel_levels():
    maps = np.stack([np.full((2, 2), 4.0), np.array([[-1.0, 0], [2, 1]])]).astype(np.float32)
    cl = channel_levels(maps)
    assert cl.shape == (2, 2) and not cl.flags.writeable
    assert cl[0, 0] == 4.0 and cl[0, 1] > 4.0  # constant channel widened
    np.testing.assert_array_equal(cl[1], [-1.0, 2.0])


def test_histogram_counts_finite_values():
    a = np.array([0.0, 0.5, 1.0, 1.0, np.nan, np.inf], np.float32)
    h = histogram(a, bins=2)
    assert h.counts.sum() == 4
    np.testing.assert_array_equal(h.counts, [1, 3])
    np.testing.assert_allclose(h.edges, [0, 0.5, 1.0])
    assert h.counts.dtype == np.float32 and not h.counts.flags.writeable
    h = histogram(np.full(3, 2.0), bins=4)
    assert h.counts.sum() == 3 and h.edges[-1] > h.edges[0]
    h = histogram(a, bins=4, lo=-1, hi=3)
    assert h.edges[0] == -1 and h.edges[-1] == 3
