"""The pooling view's record for an ONNX pooling node: its window and, for max pooling, the winners.

The Pooling view draws which input pixel won each window. PyTorch's path asks
``F.max_pool2d(return_indices=True)``; here the same flat index into the input's H*W is found
in numpy from the node's attributes (kernel, strides, pads or auto_pad, dilations), scanning each
window in row-major order and keeping the first maximum, as PyTorch does. Sizes of the
output come from the run, so ``ceil_mode`` needs no special case.
"""
from __future__ import annotations

import numpy as np

from ..reduce import sanitize
from ..snapshot import PoolCapture
from .layers import REDUCE_POOLS, attributes, pool_mode


def _pair(v, default: int) -> tuple[int, int]:
    v = [int(x) for x in v] if v else [default, default]
    return (v[0], v[1]) if len(v) >= 2 else (v[0], v[0])


def pad_begin(a: dict, size: tuple[int, int], out: tuple[int, int], kernel, stride, dilation) -> tuple[int, int]:
    """Top/left padding the node applied (explicit pads, or what auto_pad chose)."""
    auto = a.get("auto_pad", "NOTSET") or "NOTSET"
    if auto == "VALID":
        return (0, 0)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begins = []
        for i in range(2):
            total = max((out[i] - 1) * stride[i] + (kernel[i] - 1) * dilation[i] + 1 - size[i], 0)
            begins.append(total // 2 if auto == "SAME_UPPER" else total - total // 2)
        return (begins[0], begins[1])
    pads = [int(x) for x in a.get("pads", [])]
    return (pads[0], pads[1]) if len(pads) >= 2 else (0, 0)


def max_pool_argmax(x: np.ndarray, kernel, stride, pad, dilation, out_hw) -> np.ndarray:
    """(C, Ho, Wo) int32: flat index into H*W of each window's first maximum (NaN wins, as in PyTorch)."""
    c, h, w = x.shape
    ho, wo = out_hw
    best = np.full((c, ho, wo), -np.inf, dtype=np.float64)
    index = np.zeros((c, ho, wo), dtype=np.int64)
    taken = np.zeros((c, ho, wo), dtype=bool)
    oy = np.arange(ho) * stride[0] - pad[0]
    ox = np.arange(wo) * stride[1] - pad[1]
    for i in range(kernel[0]):
        rows = oy + i * dilation[0]
        row_ok = (rows >= 0) & (rows < h)
        r = np.clip(rows, 0, h - 1)
        for j in range(kernel[1]):
            cols = ox + j * dilation[1]
            ok = row_ok[:, None] & ((cols >= 0) & (cols < w))[None, :]
            cc = np.clip(cols, 0, w - 1)
            vals = x[:, r[:, None], cc[None, :]].astype(np.float64)
            better = ok[None] & ((vals > best) | (np.isnan(vals) & ~np.isnan(best)) | ~taken)
            best = np.where(better, vals, best)
            index = np.where(better, (r[:, None] * w + cc[None, :])[None], index)
            taken |= ok[None]
    out = index.astype(np.int32)
    out.setflags(write=False)
    return out


def pool_capture(node, x: np.ndarray | None, out_shape: tuple[int, ...], max_channels: int,
                 weights: dict) -> PoolCapture | None:
    """The PoolCapture of a 2-D pooling node for one sample's input ``x`` (C, H, W), or None."""
    mode = pool_mode(node, weights)
    if x is None or mode not in ("max", "avg") or x.ndim != 3 or len(out_shape) != 3:
        return None
    x = x[:max_channels]
    hi, wi = int(x.shape[1]), int(x.shape[2])
    ho, wo = int(out_shape[1]), int(out_shape[2])
    a = attributes(node)
    if node.op_type.startswith("Global") or node.op_type in REDUCE_POOLS:
        kernel, stride, dilation, pad = (hi, wi), (hi, wi), (1, 1), (0, 0)
    else:
        kernel = _pair(a.get("kernel_shape"), 1)
        stride = _pair(a.get("strides"), 1)
        dilation = _pair(a.get("dilations"), 1)
        pad = pad_begin(a, (hi, wi), (ho, wo), kernel, stride, dilation)
    argmax = max_pool_argmax(x, kernel, stride, pad, dilation, (ho, wo)) if mode == "max" else None
    input_maps, _ = sanitize(x)
    return PoolCapture(kernel=kernel, stride=stride, padding=pad, mode=mode, input_maps=input_maps, argmax=argmax)
