"""Receptive fields from the model's real strides, padding and dilation, through any structure.

One eval-mode, no-grad forward of a blank image with a ``TorchFunctionMode`` that sees
every torch call (module forwards call ``F.conv2d`` too, so module and functional layers
are the same to it) and gives each tensor derived from the input a geometry per spatial
axis, (jump, size, start): output index i covers input pixels ``start + i * jump`` up to
``size`` pixels further.

- Convolutions and max/average pooling (any padding, stride, dilation; ``padding="same"``):
  ``jump *= s``, ``size += (k - 1) * d * jump``, ``start -= p * jump``.
- ``F.pad`` shifts ``start``; adaptive pools are exact when they divide their input evenly.
- Anything else that keeps the spatial shape (BatchNorm, activations, ``x + shortcut``,
  ``torch.cat`` of channels) takes the union of its inputs' fields: a residual block sees
  what either of its paths sees.
- Anything else that changes the spatial shape (upsampling, cropping by slicing) makes the
  field unknown from there on: no layer after it gets one, rather than a wrong one.

Each module's output geometry is read by a forward hook, by qualified name.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from ..errors import ModelError
from ..introspect import eval_mode, first_tensor
from .records import ReceptiveField


@dataclass(frozen=True)
class _Geometry:
    jump: tuple[int, ...]
    size: tuple[int, ...]
    start: tuple[int, ...]
    whole: bool = False         # every output sees every input pixel (after flatten, global pooling)


WHOLE = _Geometry((), (), (), whole=True)


def _tuple(v, n: int) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        v = tuple(int(x) for x in v)
        return v * n if len(v) == 1 else v
    return (int(v),) * n


def _arg(args, kwargs, i: int, name: str, default):
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _window(g: _Geometry, kernel, stride, padding, dilation) -> _Geometry:
    return _Geometry(
        jump=tuple(j * s for j, s in zip(g.jump, stride)),
        size=tuple(r + (k - 1) * d * j for r, k, d, j in zip(g.size, kernel, dilation, g.jump)),
        start=tuple(a - p * j for a, p, j in zip(g.start, padding, g.jump)))


def _union(gs: list[_Geometry]) -> _Geometry | None:
    if any(g.whole for g in gs):
        return WHOLE
    jump = gs[0].jump
    if any(g.jump != jump for g in gs):
        return None
    start = tuple(min(g.start[a] for g in gs) for a in range(len(jump)))
    end = tuple(max(g.start[a] + g.size[a] for g in gs) for a in range(len(jump)))
    return _Geometry(jump, tuple(e - s for s, e in zip(start, end)), start)


def _flat_tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _flat_tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _flat_tensors(o)


_CONV = {"conv1d", "conv2d"}
_MAX_POOL = {"max_pool1d", "max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices", "_max_pool1d",
             "_max_pool2d"}
_AVG_POOL = {"avg_pool1d", "avg_pool2d"}
_ADAPTIVE = {"adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
             "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "_adaptive_max_pool1d",
             "_adaptive_max_pool2d"}


class _Tracer(TorchFunctionMode):
    """Gives every tensor computed from the input a geometry (or marks it unknown)."""

    def __init__(self, spatial: int):
        super().__init__()
        self.ns = spatial
        self.geometry: dict[int, _Geometry | None] = {}   # id(tensor) -> geometry; None: unknown
        self._alive: list[torch.Tensor] = []              # keeps ids unique for the pass

    def mark(self, t: torch.Tensor, g: _Geometry | None) -> None:
        self.geometry[id(t)] = g
        self._alive.append(t)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tracked = [t for t in _flat_tensors((args, kwargs)) if id(t) in self.geometry]
        if not tracked:
            return out
        outs = list(_flat_tensors(out))
        if outs:
            g = self._geometry_of(getattr(func, "__name__", ""), args, kwargs, tracked, outs[0])
            for o in outs:
                self.mark(o, g)
        return out

    def _spatial(self, t: torch.Tensor) -> bool:
        return t.dim() == self.ns + 2

    def _geometry_of(self, name, args, kwargs, tracked, out) -> _Geometry | None:
        geoms = [self.geometry[id(t)] for t in tracked]
        if any(g is None for g in geoms):
            return None
        if not self._spatial(out):
            return WHOLE                       # flattened, a global mean, class scores
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        gx = self.geometry.get(id(x)) if x is not None else None
        known = x is not None and gx is not None and self._spatial(x)
        if known and gx.whole:
            return WHOLE
        n = self.ns
        if known and name in _CONV:
            kernel = tuple(int(k) for k in _arg(args, kwargs, 1, "weight", None).shape[2:])
            stride = _tuple(_arg(args, kwargs, 3, "stride", 1), n)
            dilation = _tuple(_arg(args, kwargs, 5, "dilation", 1), n)
            padding = _arg(args, kwargs, 4, "padding", 0)
            if isinstance(padding, str):
                padding = (0,) * n if padding == "valid" else tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel))
            return _window(gx, kernel, stride, _tuple(padding, n), dilation)
        if known and name in _MAX_POOL | _AVG_POOL:
            kernel = _tuple(_arg(args, kwargs, 1, "kernel_size", 1), n)
            stride = _arg(args, kwargs, 2, "stride", None)
            stride = kernel if stride is None or stride == [] or stride == () else _tuple(stride, n)
            padding = _tuple(_arg(args, kwargs, 3, "padding", 0), n)
            dilation = _tuple(_arg(args, kwargs, 4, "dilation", 1), n) if name in _MAX_POOL else (1,) * n
            return _window(gx, kernel, stride, padding, dilation)
        if known and name in _ADAPTIVE:
            size_in, size_out = tuple(x.shape[2:]), tuple(out.shape[2:])
            if any(o != 1 and i % o for i, o in zip(size_in, size_out)):
                return None                    # uneven windows: no single geometry describes them
            kernel = tuple(i if o == 1 else i // o for i, o in zip(size_in, size_out))
            return _window(gx, kernel, kernel, (0,) * n, (1,) * n)
        if known and name == "pad":
            pad = list(_arg(args, kwargs, 1, "pad", ()))
            left = [0] * n
            for a in range(min(n, len(pad) // 2)):
                left[n - 1 - a] = int(pad[2 * a])   # F.pad lists the last axis first
            return _Geometry(gx.jump, gx.size, tuple(s - p * j for s, p, j in zip(gx.start, left, gx.jump)))
        # Anything else: a union when it keeps the spatial shape, unknown when it changes it.
        shape = tuple(out.shape[2:])
        same, whole = [], False
        for t, g in zip(tracked, geoms):
            if g.whole:
                whole = True
            elif self._spatial(t) and tuple(t.shape[2:]) == shape:
                same.append(g)
            else:
                return None
        return WHOLE if whole else (_union(same) if same else None)


def receptive_fields(model: nn.Module, input_shape) -> dict[str, ReceptiveField]:
    """{module name: receptive field} of every module whose output is a (C, H, W) map with a known field.

    Raises ModelError when the model cannot be run on one input of ``input_shape`` (C, H, W).
    """
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3:
        raise ModelError(f"receptive fields need a (C, H, W) input shape, got {input_shape}")
    tracer = _Tracer(spatial=2)
    found: dict[str, ReceptiveField] = {}
    h, w = input_shape[1:]

    def hook(name):
        def record(_module, _args, out):
            t = first_tensor(out)
            if name in found or t is None or t.dim() != 4:
                return
            g = tracer.geometry.get(id(t))
            if g is not None and not g.whole:
                found[name] = ReceptiveField(layer=name, input_size=(h, w), output_size=(int(t.shape[2]), int(t.shape[3])),
                                             jump=g.jump, size=g.size, start=g.start)
        return record

    p = next(model.parameters(), None)
    x = torch.zeros((1, *input_shape), device=p.device if p is not None else "cpu",
                    dtype=p.dtype if p is not None and p.is_floating_point() else torch.float32)
    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with eval_mode(model), torch.no_grad():
            tracer.mark(x, _Geometry((1, 1), (1, 1), (0, 0)))
            with tracer:
                model(x)
    except Exception as e:
        raise ModelError(f"forward failed on an input of shape (1, {', '.join(map(str, input_shape))}): "
                         f"{type(e).__name__}: {e}") from e
    finally:
        for handle in handles:
            handle.remove()
    return found


def receptive_field(model: nn.Module, input_shape, layer: str) -> ReceptiveField:
    """The receptive field of one layer; ModelError naming why when it has none."""
    fields = receptive_fields(model, input_shape)
    if layer not in fields:
        raise ModelError(f"layer {layer!r} has no receptive field here: it is not a spatial map "
                         "computed from the input by convolutions, pooling and elementwise steps")
    return fields[layer]
