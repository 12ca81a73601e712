"""Forward hooks with one owner: registered once, armed by a flag, removed by ``close()``.

The trainer arms the probe only on the step a snapshot is due; on every other
step each hook is a Python call that returns at once. While armed, hooks keep
the ONE probe sample of each selected layer's output (``output[i].detach().clone()``:
clone, because an in-place ReLU that follows would overwrite a view; detach, so
no autograd graph is retained), the pre-activation input of every activation
(taken in the forward *pre*-hook, before an in-place ReLU destroys it), pooling
inputs, a non-finite flag per layer, and activation-gradient norms through
``tensor.register_hook`` (never ``register_full_backward_hook``: it raises with
in-place ReLU). Statistics and mosaics are computed in ``collect()`` from those
one-sample copies only.

Functional activations (``F.relu(x)`` inside ``forward``) are caught by entering
``probe.functional()`` around the forward: a ``TorchFunctionMode`` while armed, a
no-op otherwise. The module stack from the pre-hooks names them exactly as
``introspect`` does (``<parent>.F.<fn>[_k]``).

A layer called several times in one pass (a shared activation) is captured at
its first call, like introspection lists it.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .introspect import CallTracker, FunctionalActivationMode, ModelInfo, first_tensor
from .reduce import channel_levels, histogram, levels_of, make_mosaic, sanitize, subsample
from .snapshot import ActivationStats, CaptureRequest, LayerCapture, PoolCapture

MAX_VECTOR = 4096        # values kept of a non-spatial output (a Linear's features)
MAX_SAMPLES = 4096       # pre-activation values sent for scatter overlays
HIST_BINS = 64


def _sample(t: torch.Tensor, i: int) -> torch.Tensor | None:
    if t.dim() == 0 or t.shape[0] == 0:
        return None
    return t[min(i, t.shape[0] - 1)].detach()


def _finite(v) -> float:
    v = float(v)
    return v if np.isfinite(v) else 0.0


def _finite_np(t: torch.Tensor) -> np.ndarray:
    """float32 numpy view of a private tensor, NaN/inf replaced by 0 (copying only then)."""
    a = t.float().cpu().numpy()
    if not np.isfinite(a).all():
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    return a


def _as_pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


class Probe:
    """Hooks on every layer of ``info`` (blocks included) plus the model itself."""

    def __init__(self, model: nn.Module, info: ModelInfo):
        if isinstance(model, torch.jit.ScriptModule):
            raise TypeError("TorchScript modules do not support forward hooks")
        self.model = model
        self.info = info
        self._armed = False
        self._tracker = CallTracker()
        self._handles: list = []
        self._modules: dict[str, nn.Module] = {}
        self._layers = {l.name: l for l in info.layers}
        self._has_functional = any(l.functional for l in info.layers)
        self._clear_pass()
        self._register()

    # ------------------------------------------------------------------ hooks

    def _register(self) -> None:
        root = self.model
        self._handles.append(root.register_forward_pre_hook(self._root_pre))
        self._handles.append(root.register_forward_hook(self._root_post, always_call=True))
        for layer in self.info.layers:
            if layer.functional:
                continue
            try:
                m = root.get_submodule(layer.name)
            except AttributeError:
                continue  # info from another model version: nothing to hook under that name
            self._modules[layer.name] = m
            self._handles.append(m.register_forward_pre_hook(self._make_pre(layer.name, layer.kind)))
            self._handles.append(m.register_forward_hook(self._make_post(layer.name, layer.kind),
                                                         always_call=True))

    def _root_pre(self, module, args):
        if self._armed:
            self._tracker.reset()
            self._tracker.push("", module)

    def _root_post(self, module, args, out):
        if self._armed:
            self._tracker.pop("")

    def _make_pre(self, name: str, kind: str):
        def pre(module, args):
            if not self._armed:
                return None
            self._tracker.push(name, module)
            if kind == "activation" and name not in self._pre and args and isinstance(args[0], torch.Tensor):
                s = _sample(args[0], self._si)
                if s is not None:
                    self._pre[name] = s.clone()   # before an in-place activation overwrites it
            return None
        return pre

    def _make_post(self, name: str, kind: str):
        def post(module, args, out):
            if not self._armed:
                return None
            self._tracker.pop(name)
            if name in self._seen:
                return None
            x = args[0] if args and isinstance(args[0], torch.Tensor) else None
            self._record(name, kind, out, x)
            return None
        return post

    def _on_functional(self, spec, func, args, kwargs):
        if not self._armed or not self._tracker.records_functional():
            return func(*args, **kwargs)
        name, _ = self._tracker.functional_name(spec.name)
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if x is not None and name not in self._seen:
            s = _sample(x, self._si)
            if s is not None:
                self._pre[name] = s.clone()       # relu_ / inplace=True would overwrite it
        out = func(*args, **kwargs)
        if name not in self._seen:
            self._fn[name] = (spec.name, spec.params(args, kwargs))
            self._record(name, "activation", out, None)
        return out

    def _record(self, name: str, kind: str, out, x) -> None:
        self._seen.add(name)
        t = first_tensor(out)
        if t is None:
            return
        # Whole batch, not just the probe sample: a divergence may start in any sample.
        # A sum propagates NaN/inf and costs ~30x less than isfinite().all() (884 vs 32 us
        # on a LeNet C1 batch); it also flags finite values that overflow when summed (>1e38),
        # which only happens in a run that is diverging anyway.
        self._bad[name] = ~torch.isfinite(t.detach().sum())
        s = _sample(t, self._si)
        if s is None:
            return
        self._shapes[name] = tuple(int(d) for d in s.shape)
        if self._selected is None or name in self._selected:
            self._outs[name] = (s[: self._max_ch] if s.dim() >= 2 else s.reshape(-1)[:MAX_VECTOR]).clone()
            if kind == "pool" and x is not None:
                xs = _sample(x, self._si)
                if xs is not None and xs.dim() >= 2:
                    self._pool_in[name] = xs[: self._max_ch].clone()
        if kind == "activation" and name in self._pre:
            self._act_out[name] = s.clone()
        if self._want_grads and t.requires_grad and torch.is_grad_enabled():
            t.register_hook(self._make_grad_hook(name, self._si))

    def _make_grad_hook(self, name: str, i: int):
        def hook(g):
            if name not in self._grad_norms and g is not None:
                gs = _sample(g, i)
                if gs is not None:
                    self._grad_norms[name] = torch.linalg.vector_norm(gs.float())
            return None
        return hook

    # ------------------------------------------------------------------ arming

    def _clear_pass(self) -> None:
        self._seen: set[str] = set()
        self._outs: dict[str, torch.Tensor] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._pool_in: dict[str, torch.Tensor] = {}
        self._pre: dict[str, torch.Tensor] = {}
        self._act_out: dict[str, torch.Tensor] = {}
        self._fn: dict[str, tuple[str, tuple]] = {}
        self._bad: dict[str, torch.Tensor] = {}
        self._grad_norms: dict[str, torch.Tensor] = {}
        self._collected = None

    def arm(self, layers="*", sample_index: int = 0, max_channels: int = 64, want_grads: bool = True) -> None:
        """Capture on the next forward pass(es) until ``disarm()``; clears the previous capture.

        ``layers``: names whose outputs (maps) to keep, ``"*"`` (or a collection
        containing ``"*"``) for all, or a ``CaptureRequest`` (its layers and
        max_channels). Activation statistics, non-finite flags and gradient norms
        are taken for every layer regardless.
        """
        if isinstance(layers, CaptureRequest):
            max_channels = layers.max_channels
            layers = layers.layers
        if isinstance(layers, str):
            layers = {layers}
        layers = set(layers)
        self._selected = None if "*" in layers else layers
        self._si = max(0, int(sample_index))
        self._max_ch = max(1, int(max_channels))
        self._want_grads = bool(want_grads)
        self._clear_pass()
        self._tracker.reset()
        self._armed = True

    def disarm(self) -> None:
        """Stop capturing; what was captured stays until the next ``arm()``."""
        self._armed = False
        self._tracker.reset()

    @property
    def armed(self) -> bool:
        return self._armed

    def functional(self):
        """Context for the forward pass: intercepts functional activations while armed.

        A no-op when disarmed, and when introspection found no functional
        activation: the mode routes every torch call of the pass through Python
        (~0.5 ms on a LeNet step), which buys nothing for such a model.
        """
        if not self._armed or not self._has_functional:
            return contextlib.nullcontext()
        return FunctionalActivationMode(self._on_functional)

    # ------------------------------------------------------------------ results

    def _order_key(self, name: str):
        i = self.info.index_of(name)
        return (0, i) if i >= 0 else (1, 0)

    def collect(self) -> tuple[tuple[LayerCapture, ...], tuple[ActivationStats, ...]]:
        """Snapshot pieces of the last armed pass, execution order; tensors are dropped after.

        Repeated calls return the same result until the next ``arm()``.
        """
        if self._collected is not None:
            return self._collected
        captures = tuple(self._layer_capture(n) for n in sorted(self._outs, key=self._order_key))
        stats = tuple(self._activation_stats(n) for n in sorted(self._act_out, key=self._order_key))
        self._collected = (captures, stats)
        # Only small things (flags, norms) outlive collect(): memory stays bounded.
        self._outs, self._pool_in, self._pre, self._act_out = {}, {}, {}, {}
        return self._collected

    def act_grad_norms(self) -> dict[str, float]:
        """L2 norm of d loss / d output of the probe sample, per layer (after backward)."""
        if not self._grad_norms:
            return {}
        names = list(self._grad_norms)
        vals = torch.stack([self._grad_norms[n] for n in names]).cpu().tolist()  # one host copy
        return dict(zip(names, (float(v) for v in vals)))

    def first_nonfinite_layer(self) -> str | None:
        """First layer (in the order outputs were completed) with a NaN/inf output in the armed pass."""
        if not self._bad:
            return None
        names = list(self._bad)
        flags = torch.stack([self._bad[n] for n in names]).cpu().tolist()
        return next((n for n, bad in zip(names, flags) if bad), None)

    def captured_names(self) -> tuple[str, ...]:
        return tuple(self._bad)

    # ------------------------------------------------------------------ reduction

    def _kind(self, name: str) -> str:
        layer = self._layers.get(name)
        return layer.kind if layer else ("activation" if name in self._fn else "other")

    def _layer_capture(self, name: str) -> LayerCapture:
        raw = self._outs[name].float().cpu().numpy()
        kind = self._kind(name)
        shape = self._shapes.get(name, tuple(raw.shape))
        maps = mosaic = ch_levels = vector = None
        channels: tuple[int, ...] = ()
        if raw.ndim == 2:             # (C, L) of a 1-D conv: show as C maps of height 1
            raw = raw[:, None, :]
        if raw.ndim == 3:
            maps, bad = sanitize(raw)
            channels = tuple(range(maps.shape[0]))
            mosaic = make_mosaic(maps, channels=channels)
            levels = levels_of(maps)
            ch_levels = channel_levels(maps)
        else:
            vector, bad = sanitize(raw.reshape(-1))
            levels = levels_of(vector)
        pool = self._pool_capture(name, shape) if kind == "pool" and maps is not None else None
        return LayerCapture(name=name, kind=kind, shape=shape, maps=maps, channels=channels, vector=vector,
                            mosaic=mosaic, levels=levels, channel_levels=ch_levels, nonfinite=bad, pool=pool)

    def _pool_capture(self, name: str, out_shape) -> PoolCapture | None:
        x = self._pool_in.get(name)
        m = self._modules.get(name)
        if x is None or m is None or x.dim() != 3 or len(out_shape) != 3:
            return None
        hi, wi = int(x.shape[1]), int(x.shape[2])
        ho, wo = int(out_shape[1]), int(out_shape[2])
        argmax = None
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            kernel = _as_pair(m.kernel_size)
            stride = _as_pair(m.stride if m.stride not in (None, 0, ()) else m.kernel_size)
            padding = _as_pair(m.padding)
            mode = "max" if isinstance(m, nn.MaxPool2d) else "avg"
            if mode == "max":
                # Recomputed on the one captured sample: cheaper than asking every training pass for indices.
                _, idx = F.max_pool2d(x[None].float(), m.kernel_size, m.stride, m.padding, m.dilation,
                                      m.ceil_mode, return_indices=True)
                argmax = idx[0]
        elif isinstance(m, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
            # Report the effective window (exact when the input divides evenly).
            sh, sw = max(hi // max(ho, 1), 1), max(wi // max(wo, 1), 1)
            kernel = (hi - (ho - 1) * sh, wi - (wo - 1) * sw)
            stride, padding = (sh, sw), (0, 0)
            mode = "max" if isinstance(m, nn.AdaptiveMaxPool2d) else "avg"
            if mode == "max":
                _, idx = F.adaptive_max_pool2d(x[None].float(), (ho, wo), return_indices=True)
                argmax = idx[0]
        else:
            return None
        input_maps, _ = sanitize(x.float().cpu().numpy())
        am = None
        if argmax is not None:
            am = argmax.cpu().numpy().astype(np.int32)
            am.setflags(write=False)
        return PoolCapture(kernel=kernel, stride=stride, padding=padding, mode=mode,
                           input_maps=input_maps, argmax=am)

    def _activation_stats(self, name: str) -> ActivationStats:
        layer = self._layers.get(name)
        if name in self._fn:
            fn, params = self._fn[name]
        else:
            fn = (layer.activation if layer and layer.activation else "other")
            params = layer.activation_params if layer else ()
        # The tensors are the probe's private one-sample clones: view them as numpy
        # without another copy, and replace non-finite values only when there are any.
        pre = _finite_np(self._pre[name])
        out_raw = self._act_out[name].float().cpu().numpy()
        out = _finite_np(self._act_out[name])
        n = max(out.size, 1)
        if fn == "sigmoid":
            saturated = float(np.count_nonzero((out < 0.01) | (out > 0.99)) / n)
        elif fn == "tanh":
            saturated = float(np.count_nonzero(np.abs(out) > 0.99) / n)
        else:
            saturated = 0.0
        lo, hi = (float(pre.min()), float(pre.max())) if pre.size else (0.0, 0.0)
        mean = out.mean(dtype=np.float64) if out.size else 0.0
        std = np.sqrt(np.mean(np.square(out - mean, dtype=np.float64))) if out.size else 0.0
        return ActivationStats(
            name=name, function=fn, params=tuple(params),
            pre=histogram(pre, bins=HIST_BINS, lo=lo, hi=hi),
            pre_min=lo, pre_max=hi, out_mean=_finite(mean), out_std=_finite(std),
            frac_dead=float(np.count_nonzero(out_raw == 0) / n),
            frac_saturated=saturated,
            samples=subsample(pre, MAX_SAMPLES),
        )

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Remove every hook and drop every captured tensor (idempotent)."""
        self._armed = False
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._clear_pass()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
