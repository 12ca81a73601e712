"""Probe inputs (float arrays in [0, 1]) to QImages for previews and the drawing pad."""
from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QImage


def to_display_uint8(image01: np.ndarray) -> np.ndarray:
    """(H, W) or (C, H, W) float in [0, 1] → (H, W) grey or (H, W, 3) RGB uint8.

    One channel is grey, three are RGB, any other count shows the channel mean:
    a preview must never fail on an unusual model input.
    """
    a = np.asarray(image01, dtype=np.float32)
    if a.ndim == 3:
        if a.shape[0] == 1:
            a = a[0]
        elif a.shape[0] == 3:
            a = np.moveaxis(a, 0, -1)
        else:
            a = a.mean(axis=0)
    elif a.ndim != 2:
        raise ValueError(f"expected an (H, W) or (C, H, W) image, got shape {a.shape}")
    a = np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0)
    return np.ascontiguousarray(np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8))


def display_to_qimage(a: np.ndarray) -> QImage:
    """to_display_uint8's (H, W) or (H, W, 3) uint8 → a QImage that owns its pixels."""
    h, w = a.shape[:2]
    if a.ndim == 2:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8)
    else:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888)
    return img.copy()  # detach from the numpy buffer, which may be freed


def qimage_gray_to_array(img: QImage) -> np.ndarray:
    """A Grayscale8 QImage → (H, W) float32 in [0, 1] (a copy)."""
    if img.format() != QImage.Format.Format_Grayscale8:
        img = img.convertToFormat(QImage.Format.Format_Grayscale8)
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits().asstring(h * bpl), np.uint8).reshape(h, bpl)
    return buf[:, :w].astype(np.float32) / 255.0
