"""A conv, pooling or fully connected unit of the real model, computed step by step.

Each function runs one looking-only pass (``capture.run_layer_pass``: eval mode, no_grad,
flags restored, hooks removed), takes the layer's real input, and redoes the arithmetic of
one output value in the open: the window over the (padded) input, the kernel, the
element-wise products and their sum plus the bias; or the pooling window and its winner or
mean; or the largest contributions w_i * x_i of one unit. The result carries the value in
the layer's real output too, so a view can show that the two agree (tests check it to
float tolerance for strided, padded, dilated, grouped and depthwise convolutions).

``image`` is one input in the model's normalisation, (C, H, W) or (1, C, H, W); for a
[0, 1] image use ``capture.model_input(image01, bundle.mean, bundle.std)`` first.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..snapshot import frozen_array
from .capture import apply_activation, as_batch, find_module, run_layer_pass
from .records import ActivationStep, ConvStep, ExplainError, LinearStep, PoolStep, WindowGeometry

MAX_MAPS = 16      # padded input maps kept per conv step for drawing (all channels still enter the sum)
TOP_K = 10         # contributions listed for a fully connected unit

_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[-1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _check_index(what: str, value: int, limit: int) -> int:
    if not (isinstance(value, (int, np.integer)) and 0 <= int(value) < limit):
        raise ExplainError(f"{what} {value!r} is out of range: this layer has 0..{limit - 1}")
    return int(value)


def _activation_step(lp, channel: int, channels: int, value: float, index) -> ActivationStep | None:
    found = apply_activation(lp.activation, channel, channels, value, index)
    if found is None:
        return None
    computed, real = found
    a = lp.activation
    return ActivationStep(layer=a.name, function=a.function, functional=a.functional, computed=computed, output=real)


# ------------------------------------------------------------------ convolution

def conv_geometry(m: nn.Conv2d, input_size: tuple[int, int], output_size: tuple[int, int]) -> WindowGeometry:
    # _reversed_padding_repeated_twice is (left, right, top, bottom): what Conv2d itself pads with,
    # for integer padding and for padding="same" (asymmetric when the kernel span is even).
    left, right, top, bottom = (int(v) for v in m._reversed_padding_repeated_twice)
    return WindowGeometry(kind="conv", kernel=_pair(m.kernel_size), stride=_pair(m.stride),
                          dilation=_pair(m.dilation), padding=(top, left, bottom, right),
                          input_size=input_size, output_size=output_size)


def _padded(m: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    pad = [int(v) for v in m._reversed_padding_repeated_twice]
    if m.padding_mode == "zeros":
        return F.pad(x, pad, mode="constant", value=0.0)
    return F.pad(x, pad, mode=m.padding_mode)


def explain_conv(model: nn.Module, image, layer: str, channel: int, y: int, x: int) -> ConvStep:
    """Output ``channel`` of conv ``layer`` at output position (``y``, ``x``), step by step."""
    m = find_module(model, layer, (nn.Conv2d,), "Conv2d")
    lp = run_layer_pass(model, as_batch(model, image), layer, m)
    inp, out = lp.input[0], lp.output[0]                      # (Cin, Hi, Wi), (Cout, Ho, Wo)
    if inp.dim() != 3 or out.dim() != 3:
        raise ExplainError(f"{layer!r} received an input of shape {tuple(lp.input.shape)}; expected (1, C, H, W)")
    channel = _check_index("output channel", channel, out.shape[0])
    y = _check_index("row", y, out.shape[1])
    x = _check_index("column", x, out.shape[2])
    geo = conv_geometry(m, (int(inp.shape[1]), int(inp.shape[2])), (int(out.shape[1]), int(out.shape[2])))
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    top, left = geo.padding[0], geo.padding[1]

    per_group = m.in_channels // m.groups
    group = channel // (m.out_channels // m.groups)
    chans = list(range(group * per_group, (group + 1) * per_group))
    padded = _padded(m, inp[chans][None])[0]                    # (Cg, Hp, Wp)
    prow = y * sh + np.arange(kh) * dh                          # rows read, in padded coordinates
    pcol = x * sw + np.arange(kw) * dw
    patches = padded[:, prow][:, :, pcol]                       # (Cg, kh, kw)
    kernel = m.weight.detach()[channel]                         # (Cg, kh, kw)
    products = (patches.double() * kernel.double())
    channel_sums = products.sum(dim=(1, 2))
    has_bias = m.bias is not None
    bias = float(m.bias.detach()[channel]) if has_bias else 0.0
    total = float(channel_sums.sum()) + bias
    rows, cols = prow - top, pcol - left
    inside = ((rows >= 0) & (rows < geo.input_size[0]))[:, None] & ((cols >= 0) & (cols < geo.input_size[1]))[None, :]
    return ConvStep(
        layer=layer, out_channel=channel, position=(y, x), geometry=geo, groups=int(m.groups),
        padding_mode=str(m.padding_mode), in_channels=tuple(chans),
        padded_inputs=frozen_array(padded[:MAX_MAPS].float().cpu().numpy()),
        rows=frozen_array(rows, np.int32), cols=frozen_array(cols, np.int32), inside=frozen_array(inside, bool),
        patches=frozen_array(patches.float().cpu().numpy()), kernel=frozen_array(kernel.float().cpu().numpy()),
        products=frozen_array(products.float().cpu().numpy()),
        channel_sums=frozen_array(channel_sums.float().cpu().numpy()),
        bias=bias, has_bias=has_bias, total=total, output=float(out[channel, y, x]),
        output_map=frozen_array(out[channel].float().cpu().numpy()),
        activation=_activation_step(lp, channel, int(out.shape[0]), total, (channel, y, x)),
        next_layer=lp.next_layer)


def window_geometry(model: nn.Module, image, layer: str) -> WindowGeometry:
    """How the window of conv or pooling ``layer`` slides on this input (for play/step), from one pass."""
    m = find_module(model, layer, (nn.Conv2d, *_POOLS), "Conv2d or 2-D pooling")
    lp = run_layer_pass(model, as_batch(model, image), layer, m)
    hi, wi = int(lp.input.shape[-2]), int(lp.input.shape[-1])
    ho, wo = int(lp.output.shape[-2]), int(lp.output.shape[-1])
    if isinstance(m, nn.Conv2d):
        return conv_geometry(m, (hi, wi), (ho, wo))
    return _pool_geometry(m, (hi, wi), (ho, wo))


# ------------------------------------------------------------------ pooling

def _pool_geometry(m: nn.Module, input_size, output_size) -> WindowGeometry:
    if isinstance(m, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
        (hi, wi), (ho, wo) = input_size, output_size
        kernel = (math.ceil(hi / ho), math.ceil(wi / wo))        # the largest window (exact when it divides)
        return WindowGeometry(kind="pool", kernel=kernel, stride=(max(hi // ho, 1), max(wi // wo, 1)),
                              dilation=(1, 1), padding=(0, 0, 0, 0), input_size=input_size,
                              output_size=output_size, adaptive=True)
    ph, pw = _pair(m.padding)
    kernel = _pair(m.kernel_size)
    stride = _pair(m.stride if m.stride not in (None, 0, ()) else m.kernel_size)
    dilation = _pair(getattr(m, "dilation", 1))
    return WindowGeometry(kind="pool", kernel=kernel, stride=stride, dilation=dilation,
                          padding=(ph, pw, ph, pw), input_size=input_size, output_size=output_size)


def _adaptive_window(i: int, n_in: int, n_out: int) -> tuple[int, int]:
    return (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)    # floor, ceil: PyTorch's adaptive bounds


def explain_pool(model: nn.Module, image, layer: str, channel: int, y: int, x: int) -> PoolStep:
    """Channel ``channel`` of pooling ``layer`` at output (``y``, ``x``): its window and winner or mean."""
    m = find_module(model, layer, _POOLS, "2-D max or average pooling")
    lp = run_layer_pass(model, as_batch(model, image), layer, m)
    inp, out = lp.input[0], lp.output[0]
    if inp.dim() != 3 or out.dim() != 3:
        raise ExplainError(f"{layer!r} received an input of shape {tuple(lp.input.shape)}; expected (1, C, H, W)")
    channel = _check_index("channel", channel, out.shape[0])
    y = _check_index("row", y, out.shape[1])
    x = _check_index("column", x, out.shape[2])
    hi, wi = int(inp.shape[1]), int(inp.shape[2])
    geo = _pool_geometry(m, (hi, wi), (int(out.shape[1]), int(out.shape[2])))
    mode = "max" if isinstance(m, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)) else "avg"
    src = inp[channel].double().cpu().numpy()

    if geo.adaptive:
        y0, y1 = _adaptive_window(y, hi, geo.output_size[0])
        x0, x1 = _adaptive_window(x, wi, geo.output_size[1])
        rows, cols = np.arange(y0, y1), np.arange(x0, x1)
    else:
        (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
        rows = y * sh - geo.padding[0] + np.arange(kh) * dh
        cols = x * sw - geo.padding[1] + np.arange(kw) * dw
    inside = ((rows >= 0) & (rows < hi))[:, None] & ((cols >= 0) & (cols < wi))[None, :]
    patch = np.zeros(inside.shape, np.float64)
    patch[inside] = src[np.clip(rows, 0, hi - 1)][:, np.clip(cols, 0, wi - 1)][inside]

    winner, divisor, window_sum = None, 1, float(patch[inside].sum())
    if mode == "max":
        masked = np.where(inside, patch, -np.inf)
        r, c = np.unravel_index(int(np.argmax(masked)), masked.shape)   # first maximum in raster order
        winner = (int(rows[r]), int(cols[c]))
        computed = float(masked[r, c])
    else:
        divisor = _avg_divisor(m, geo, y, x, inside) if not geo.adaptive else int(inside.sum())
        computed = window_sum / divisor
    ph, pw = geo.padding[0], geo.padding[1]
    padded = np.zeros((hi + 2 * ph, wi + 2 * pw), np.float32)
    padded[ph:ph + hi, pw:pw + wi] = src
    return PoolStep(layer=layer, channel=channel, position=(y, x), geometry=geo, mode=mode,
                    padded_input=frozen_array(padded), rows=frozen_array(rows, np.int32),
                    cols=frozen_array(cols, np.int32), inside=frozen_array(inside, bool),
                    patch=frozen_array(patch), winner=winner, divisor=int(divisor), window_sum=window_sum,
                    computed=computed, output=float(out[channel, y, x]),
                    output_map=frozen_array(out[channel].float().cpu().numpy()))


def _avg_divisor(m: nn.AvgPool2d, geo: WindowGeometry, y: int, x: int, inside: np.ndarray) -> int:
    """What AvgPool2d divides a window's sum by (its C++ kernel's rule, ceil_mode windows included)."""
    if m.divisor_override:
        return int(m.divisor_override)
    (hi, wi), (kh, kw), (sh, sw) = geo.input_size, geo.kernel, geo.stride
    ph, pw = geo.padding[0], geo.padding[1]
    h0, w0 = y * sh - ph, x * sw - pw
    h1, w1 = min(h0 + kh, hi + ph), min(w0 + kw, wi + pw)     # a window is cut where the padding ends
    if m.count_include_pad:
        return (h1 - h0) * (w1 - w0)
    return int(inside.sum())


# ------------------------------------------------------------------ fully connected

def explain_linear(model: nn.Module, image, layer: str, unit: int, top_k: int = TOP_K) -> LinearStep:
    """Unit ``unit`` of Linear ``layer``: its ``top_k`` largest contributions w_i * x_i, the rest, the bias."""
    m = find_module(model, layer, (nn.Linear,), "Linear")
    lp = run_layer_pass(model, as_batch(model, image), layer, m)
    if lp.input.dim() != 2:
        raise ExplainError(f"{layer!r} received an input of shape {tuple(lp.input.shape)}; "
                           "only (1, features) inputs are explained")
    unit = _check_index("unit", unit, lp.output.shape[1])
    xs = lp.input[0].double()
    w = m.weight.detach()[unit].double()
    products = xs * w
    k = max(1, min(int(top_k), products.numel()))
    order = torch.argsort(products.abs(), descending=True, stable=True)
    top = order[:k]
    has_bias = m.bias is not None
    bias = float(m.bias.detach()[unit]) if has_bias else 0.0
    total = float(products.sum()) + bias
    return LinearStep(
        layer=layer, unit=unit, in_features=int(m.in_features), out_features=int(m.out_features),
        inputs=frozen_array(xs.float().cpu().numpy()), weights=frozen_array(w.float().cpu().numpy()),
        products=frozen_array(products.float().cpu().numpy()), top=frozen_array(top.cpu().numpy(), np.int64),
        rest=float(products[order[k:]].sum()) if k < products.numel() else 0.0,
        bias=bias, has_bias=has_bias, total=total, output=float(lp.output[0, unit]),
        activation=_activation_step(lp, unit, int(lp.output.shape[1]), total, (unit,)),
        next_layer=lp.next_layer)
