"""Realistic fake snapshots built from numpy alone (the views never see torch).

Shapes follow LeNet-5 on a 32x32 digit: C1 conv (6,28,28) -> relu1 -> S2 max
pool (6,14,14) -> C3 conv (16,10,10) -> relu2 -> S4 pool (16,5,5) -> F5 (120,)
-> F6 (84,) -> output (10,). The values come from real numpy convolutions of a
drawn "digit" with random kernels, so the maps have structure, signs and
dead pixels like the real thing, and pooling winners are true argmaxes.
"""
from __future__ import annotations

import numpy as np

from visualizer.core.snapshot import (
    ActivationStats,
    FilterCapture,
    GradientStats,
    Histogram,
    LayerCapture,
    PoolCapture,
    ProbeSnapshot,
    TrainingSnapshot,
    frozen_array,
)

CLASSES = tuple(str(i) for i in range(10))


def sanitized(a: np.ndarray) -> tuple[np.ndarray, int]:
    bad = ~np.isfinite(a)
    return np.where(bad, 0.0, a).astype(np.float32), int(bad.sum())


def spatial_capture(name: str, kind: str, maps: np.ndarray, pool: PoolCapture | None = None) -> LayerCapture:
    clean, n_bad = sanitized(maps)
    return LayerCapture(
        name=name, kind=kind, shape=tuple(maps.shape), maps=frozen_array(clean),
        channels=tuple(range(len(maps))), vector=None, nonfinite=n_bad, pool=pool)


def vector_capture(name: str, kind: str, vec: np.ndarray) -> LayerCapture:
    return LayerCapture(name=name, kind=kind, shape=vec.shape, maps=None, channels=(), vector=frozen_array(vec),
                        nonfinite=0)


def conv2d(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Valid cross-correlation (C,H,W) * (O,C,k,k) -> (O,H-k+1,W-k+1)."""
    o, c, k, _ = w.shape
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))  # (C,Ho,Wo,k,k)
    return np.einsum("chwij,ocij->ohw", win, w).astype(np.float32)


def max_pool(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(C,H,W) -> (out (C,H/k,W/k), argmax flat index into H*W of each winner)."""
    c, h, w = x.shape
    ho, wo = h // k, w // k
    blocks = x[:, : ho * k, : wo * k].reshape(c, ho, k, wo, k).transpose(0, 1, 3, 2, 4).reshape(c, ho, wo, k * k)
    local = blocks.argmax(-1)
    out = np.take_along_axis(blocks, local[..., None], -1)[..., 0]
    ys = np.arange(ho)[None, :, None] * k + local // k
    xs = np.arange(wo)[None, None, :] * k + local % k
    return out.astype(np.float32), (ys * w + xs).astype(np.int32)


def act(name: str, x: np.ndarray) -> np.ndarray:
    return {"relu": lambda v: np.maximum(v, 0), "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
            "tanh": np.tanh}[name](x).astype(np.float32)


def activation_stats(name: str, function: str, pre: np.ndarray, out: np.ndarray, params=()) -> ActivationStats:
    lo, hi = float(pre.min()), float(pre.max())
    counts, edges = np.histogram(pre, bins=64, range=(lo, hi))
    if function == "sigmoid":
        sat = float(np.mean((out < 0.01) | (out > 0.99)))
    elif function == "tanh":
        sat = float(np.mean(np.abs(out) > 0.99))
    else:
        sat = 0.0
    dead = float(np.mean(out == 0)) if function in ("relu", "leaky_relu", "relu6") else 0.0
    return ActivationStats(
        name=name, function=function, params=tuple(params),
        pre=Histogram(frozen_array(counts), frozen_array(edges)), pre_min=lo, pre_max=hi,
        out_mean=float(out.mean()), out_std=float(out.std()), frac_dead=dead, frac_saturated=sat)


def digit(size: int = 32) -> np.ndarray:
    """A ring with a stroke: a plausible handwritten 0/6 in [0, 1]."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    r = np.hypot(yy - size * 0.55, xx - size / 2)
    img = np.exp(-((r - size * 0.25) ** 2) / 6.0)
    img += np.exp(-((xx - size * 0.35 - 0.3 * (yy - size * 0.2)) ** 2) / 4.0) * (yy < size * 0.5)
    return np.clip(img, 0, 1)[None].astype(np.float32)


def make_probe(seed: int = 0, activation: str = "relu", inject_nonfinite: bool = False,
               in_channels: int = 1) -> ProbeSnapshot:
    rng = np.random.default_rng(seed)
    x = np.repeat(digit(), in_channels, axis=0)
    w1 = rng.normal(0, 0.4, (6, in_channels, 5, 5)).astype(np.float32)
    w3 = rng.normal(0, 0.15, (16, 6, 5, 5)).astype(np.float32)
    c1 = conv2d(x, w1)
    a1 = act(activation, c1)
    s2, s2_arg = max_pool(a1)
    c3 = conv2d(s2, w3)
    a2 = act(activation, c3)
    s4, s4_arg = max_pool(a2)
    f5 = np.maximum(rng.normal(0, 0.2, (120, s4.size)).astype(np.float32) @ s4.ravel(), 0)
    f6 = np.maximum(rng.normal(0, 0.2, (84, 120)).astype(np.float32) @ f5, 0)
    logits = (rng.normal(0, 0.3, (10, 84)).astype(np.float32) @ f6) * 0.02
    logits[6] += 3.0
    p = np.exp(logits - logits.max())
    p /= p.sum()
    if inject_nonfinite:
        c3 = c3.copy()
        c3[0, 2, 3] = np.inf     # one +inf pixel
        c3[1] = np.nan           # one all-NaN map
    layers = (
        spatial_capture("C1", "conv", c1),
        spatial_capture("relu1", "activation", a1),
        spatial_capture("S2", "pool", s2, PoolCapture((2, 2), (2, 2), (0, 0), "max", frozen_array(a1),
                                                      frozen_array(s2_arg, np.int32))),
        spatial_capture("C3", "conv", c3),
        spatial_capture("relu2", "activation", a2),
        spatial_capture("S4", "pool", s4, PoolCapture((2, 2), (2, 2), (0, 0), "max", frozen_array(a2),
                                                      frozen_array(s4_arg, np.int32))),
        vector_capture("F5", "linear", f5),
        vector_capture("F6", "linear", f6),
        vector_capture("output", "linear", logits),
    )
    acts = (activation_stats("relu1", activation, c1, a1), activation_stats("relu2", activation, c3[np.isfinite(c3)], a2),
            activation_stats("softmax", "softmax", logits, p))
    filters = (
        FilterCapture("C1", frozen_array(w1), frozen_array(w1 * 0.1), frozen_array(w1 * 0.01), in_channels, 6, 1),
        FilterCapture("C3", frozen_array(w3), None, None, 6, 16, 1),
    )
    return ProbeSnapshot(input_image=frozen_array(x), label=6, probabilities=frozen_array(p), class_names=CLASSES,
                         layers=layers, activations=acts, filters=filters)


GRAD_LAYERS = ("C1", "C3", "F5", "F6", "output")


def make_training(step: int = 10, norms=(1e-3, 5e-3, 1e-2, 3e-2, 1e-1), loss: float = 1.0, acc: float = 0.5,
                  probe: ProbeSnapshot | None = None, history_rows: int = 5) -> TrainingSnapshot:
    grads = tuple(GradientStats(name=n, weight_norm=float(g), bias_norm=float(g) / 10, weight_l2=1.0,
                                update_ratio=float(g) * 1e-2, act_grad_norm=None)
                  for n, g in zip(GRAD_LAYERS, norms))
    steps = np.arange(step - history_rows + 1, step + 1, dtype=np.float32)
    hist = np.stack([steps, loss + 0.01 * (step - steps), np.full_like(steps, acc)], axis=1)
    return TrainingSnapshot(step=step, epoch=0, batch=step, batches_per_epoch=100, total_steps=300, loss=loss,
                            accuracy=acc, lr=0.01, samples_per_sec=1000.0, history=frozen_array(hist),
                            gradients=grads, probe=probe)
