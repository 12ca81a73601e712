"""Fitting an image to a model's input (channels, size): one way for single images and whole datasets."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .images import LUMINANCE, channel_note, resize_note


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) float -> (N, channels, H, W): gray is repeated, RGB -> gray is luminance."""
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1:
        return x.expand(-1, channels, -1, -1).contiguous()
    if c == 3 and channels == 1:
        w = torch.tensor(LUMINANCE, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * w).sum(dim=1, keepdim=True)
    raise ValueError(f"cannot convert {c} channels to {channels} (only gray <-> RGB and gray -> any)")


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, *size): bilinear, antialiased when shrinking (no aliasing moire)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)






def to_model_input(array: np.ndarray, input_shape) -> tuple[np.ndarray, tuple[str, ...]]:
    """(H, W, C) or (H, W) float in [0, 1] -> ((C', H', W') float32 in [0, 1], notes) for ``input_shape``."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {a.shape}")
    C, H, W = (int(v) for v in input_shape)
    x = torch.from_numpy(np.array(a.transpose(2, 0, 1), order="C"))[None]  # a copy: read-only input is fine
    notes = [n for n in (channel_note(x.shape[1], C), resize_note(tuple(x.shape[-2:]), (H, W))) if n]
    x = resize(convert_channels(x, C), (H, W)).clamp_(0.0, 1.0)
    return np.ascontiguousarray(x[0].numpy(), dtype=np.float32), tuple(notes)


def normalise(array01: np.ndarray, mean, std) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (x - mean[c]) / std[c] as float32; mean/std of length 1 or C."""
    a = np.asarray(array01, dtype=np.float32)
    c = a.shape[0]
    m = np.asarray(mean, dtype=np.float32).reshape(-1)
    s = np.asarray(std, dtype=np.float32).reshape(-1)
    if m.size not in (1, c) or s.size not in (1, c):
        raise ValueError(f"mean/std have {m.size}/{s.size} values for an image with {c} channels")
    if np.any(s == 0):
        raise ValueError("std must not be 0")
    return np.ascontiguousarray((a - m.reshape(-1, 1, 1)) / s.reshape(-1, 1, 1), dtype=np.float32)


# The last image fitted: a request's image is probed again at every snapshot, fitted once.
_last_fit: tuple = (None, None, None, None)


def fit_probe_image(image: np.ndarray, input_shape: tuple[int, int, int],
                    via: tuple[int, int] | None = None) -> np.ndarray:
    """A (C, H, W) [0, 1] image (a drawing, an opened file) fitted to ``input_shape``, read-only.

    ``via``: resize to this (H, W) first, the training data's own size, so that an image
    reaches a model trained on upscaled small images the way its training images did.
    The result is cached for the same (immutable) image, shape and ``via``.
    """
    global _last_fit
    image_, shape_, via_, fitted = _last_fit
    if image_ is image and shape_ == input_shape and via_ == via:
        return fitted
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.shape != tuple(input_shape):
        hwc = a.transpose(1, 2, 0)
        if via is not None and tuple(via) != tuple(a.shape[1:]):
            small, _ = to_model_input(hwc, (input_shape[0], int(via[0]), int(via[1])))
            hwc = small.transpose(1, 2, 0)
        a, _ = to_model_input(hwc, input_shape)
    fitted = np.array(a, dtype=np.float32, order="C")
    fitted.setflags(write=False)
    _last_fit = (image, tuple(input_shape), via, fitted)
    return fitted
