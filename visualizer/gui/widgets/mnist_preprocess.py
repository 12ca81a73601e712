"""Turn a large drawing into a small model input the way MNIST was made (numpy only).

MNIST digits were size-normalised to fit a 20x20 box (aspect ratio kept,
anti-aliased) and then placed in a 28x28 field so that their centre of mass
sits at the centre. A drawing that skips this (small, off-centre, thin) is
misread by a model trained on MNIST, so the drawing pad offers the same steps.
"""
from __future__ import annotations

import numpy as np

MNIST_BOX_FRACTION = 20.0 / 28.0
INK_THRESHOLD = 0.05  # faint anti-aliasing fringes do not count towards the bounding box


def _area_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) matrix: how much of each source pixel falls into each target pixel."""
    edges = np.linspace(0.0, src, dst + 1)
    lo = np.clip(edges[:-1, None], np.arange(src)[None, :], np.arange(1, src + 1)[None, :])
    hi = np.clip(edges[1:, None], np.arange(src)[None, :], np.arange(1, src + 1)[None, :])
    w = hi - lo
    return w / w.sum(axis=1, keepdims=True)


def area_resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Resize a (H, W) image by exact area averaging (no aliasing when shrinking)."""
    a = np.asarray(a, dtype=np.float64)
    out = _area_weights(a.shape[0], h) @ a @ _area_weights(a.shape[1], w).T
    return out.astype(np.float32)


def mnist_center(canvas: np.ndarray, h: int = 28, w: int = 28,
                 box_fraction: float = MNIST_BOX_FRACTION) -> np.ndarray:
    """Crop the ink, fit it into the MNIST box, centre it by centre of mass.

    ``box_fraction``: the share of the field the ink's longer side fills (MNIST:
    20/28; the UCI 8x8 digits were scaled to fill their whole field, 1.0).

    ``canvas`` is (H, W) float in [0, 1], white ink on black; the result is
    (h, w) float32 in [0, 1]. An empty canvas gives zeros.
    """
    canvas = np.asarray(canvas, dtype=np.float32)
    out = np.zeros((h, w), np.float32)
    rows = np.flatnonzero((canvas > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((canvas > INK_THRESHOLD).any(axis=0))
    if rows.size == 0:
        return out
    crop = canvas[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    box = max(1, int(round(box_fraction * min(h, w))))
    scale = box / max(crop.shape)
    ch = max(1, int(round(crop.shape[0] * scale)))
    cw = max(1, int(round(crop.shape[1] * scale)))
    small = np.clip(area_resize(crop, ch, cw), 0.0, 1.0)

    mass = small.sum()
    ys, xs = np.indices(small.shape)
    cy = (ys * small).sum() / mass
    cx = (xs * small).sum() / mass
    # MNIST puts the centre of mass at pixel (14, 14) of 28x28, i.e. at index
    # h/2 (measured on the real test set: 14.0-14.4), not at the geometric
    # centre 13.5. Never push ink off the field: slightly off-centre beats cut.
    top = int(np.clip(round(h / 2.0 - cy), 0, h - ch))
    left = int(np.clip(round(w / 2.0 - cx), 0, w - cw))
    out[top:top + ch, left:left + cw] = small
    return out
