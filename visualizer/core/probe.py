"""Forward hooks with one owner: registered once, armed by a flag, removed by ``close()``.

The trainer arms the probe only on the step a snapshot is due; on every other
step each hook is a Python call that returns at once. While armed, hooks keep
the ONE probe sample of each selected layer's output (``output[i].detach().clone()``:
clone, because an in-place ReLU that follows would overwrite a view; detach, so
no autograd graph is retained), the pre-activation input of every activation
(taken in the forward *pre*-hook, before an in-place ReLU destroys it), pooling
inputs, on request a non-finite flag per layer (divergence diagnosis), and
activation-gradient norms through ``tensor.register_hook`` (never
``register_full_backward_hook``: it raises with in-place ReLU). ``collect()`` turns
those one-sample copies into snapshot records in a few batched ops and one host copy
(``probe_reduce.py``).

What is kept: the layers a request names with ``max_channels`` channels, every other
layer with ``overview_channels`` (the overview strip's few; 0: none), and the input and
output of every activation (their statistics are part of every snapshot).

Functional layers (``F.relu(x)``, ``F.conv2d(x, self.w)``, ``F.max_pool2d(x, 2)``,
``torch.flatten``, ``out + identity`` inside ``forward``) are caught by entering
``probe.functional()`` around the forward: a ``functional_calls.FunctionalLayerMode``
while armed, a no-op otherwise. The module stack from the pre-hooks names them exactly
as ``introspect`` does (``<parent>.F.<fn>[_k]``), and they are kept like their module
forms (a functional pool with its input and the window its arguments give). The probe's
own tensor work inside a hook runs with the interception off: a ``reshape`` of ours is
not a layer of the model.

A layer called several times in one pass (a shared activation) is captured at
its first call, like introspection lists it.

``arm(batch_observer=f)`` also hands every layer's whole-batch output (detached, not
copied) to ``f(name, kind, function, tensor)`` once per armed pass: the health report
and the top-patch search reduce a training batch through the same hooks instead of
registering their own, and nothing of the batch is kept here.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from .functional_calls import CallTracker, FunctionalLayerMode, pool_geometry
from .introspect import ModelInfo, first_tensor
from .pool_window import of_module
from .probe_reduce import PassTensors, reduce_pass, stage_pass
from .snapshot import ActivationStats, CaptureRequest, LayerCapture

MAX_VECTOR = 4096        # values kept of a non-spatial output (a Linear's features)


def _sample(t: torch.Tensor, i: int) -> torch.Tensor | None:
    shape = t.shape
    if not shape or shape[0] == 0:
        return None
    return t[min(i, shape[0] - 1)].detach()


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
        self._pool_geometry = {}            # module pools' windows, read once
        self._in_hook = False               # our own tensor work: not the model's calls
        self._layers = {l.name: l for l in info.layers}
        self._has_functional = any(l.functional for l in info.layers)
        self._observer = None
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
            if layer.kind == "pool" and (g := of_module(m)) is not None:
                self._pool_geometry[layer.name] = g
            # Pre-hooks only where they are needed: an activation's input is kept there, and the
            # module stack that names functional calls needs every module (a hook call per module
            # per pass is most of what an armed pass of a small model costs).
            if self._has_functional or layer.kind == "activation":
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
            if self._has_functional:
                self._tracker.push(name, module)
            pre = self._kept.pre
            if self._stats and kind == "activation" and name not in pre and args and isinstance(args[0], torch.Tensor):
                self._in_hook = True
                try:
                    s = _sample(args[0], self._si)
                    if s is not None:
                        pre[name] = s.clone()   # before an in-place activation overwrites it
                finally:
                    self._in_hook = False
            return None
        return pre

    def _make_post(self, name: str, kind: str):
        def post(module, args, out):
            if not self._armed:
                return None
            if self._has_functional:
                self._tracker.pop(name)
            if name in self._seen:
                return None
            x = args[0] if args and isinstance(args[0], torch.Tensor) else None
            self._record(name, kind, out, x, self._pool_geometry.get(name))
            return None
        return post

    def _on_functional(self, spec, func, args, kwargs):
        if (not self._armed or self._in_hook or not self._tracker.records_functional()
                or not spec.is_layer_call(args, kwargs)):
            return func(*args, **kwargs)
        name, _ = self._tracker.functional_name(spec.name)
        if name in self._seen:
            return func(*args, **kwargs)
        x = args[0]
        activation = spec.kind == "activation"
        if activation and self._stats:
            self._in_hook = True
            try:
                s = _sample(x, self._si)
                if s is not None:
                    self._kept.pre[name] = s.clone()       # relu_ / inplace=True would overwrite it
            finally:
                self._in_hook = False
        out = func(*args, **kwargs)
        if activation:
            self._fn[name] = (spec.name, spec.params(args, kwargs))
        kind = self._layers[name].kind if name in self._layers else spec.kind   # depthwise_conv, not conv
        self._record(name, kind, out, x, pool_geometry(spec, args, kwargs))
        return out

    def _record(self, name: str, kind: str, out, x, pool=None) -> None:
        """Keep what the armed pass wants of layer ``name``'s output (``pool``: its window, for a pool)."""
        self._in_hook = True
        try:
            self._keep(name, kind, out, x, pool)
        finally:
            self._in_hook = False

    def _keep(self, name: str, kind: str, out, x, pool) -> None:
        self._seen.add(name)
        t = first_tensor(out)
        if t is None:
            return
        if self._track_nonfinite:
            # Whole batch, not just the probe sample: a divergence may start in any sample.
            # A sum propagates NaN/inf and costs ~30x less than isfinite().all() (884 vs 32 us
            # on a LeNet C1 batch); it also flags finite values that overflow when summed (>1e38),
            # which only happens in a run that is diverging anyway.
            self._bad[name] = ~torch.isfinite(t.detach().sum())
        if self._observer is not None:
            self._observer(name, kind, self._function_of(name)[0] if kind == "activation" else None, t.detach())
        selected = self._selected is None or name in self._selected
        n_ch = self._max_ch if selected else self._overview_ch
        if self._want_grads and t.requires_grad and torch.is_grad_enabled():
            t.register_hook(self._make_grad_hook(name, self._si))
        if n_ch == 0 and not self._stats:
            return   # the training pass armed only for gradient norms: nothing to keep
        s = _sample(t, self._si)
        if s is None:
            return
        kept = self._kept
        shape = kept.shapes[name] = tuple(s.shape)
        whole = None
        if kind == "activation" and name in kept.pre:
            whole = kept.act_out[name] = s.clone()
            kept.act_fn[name] = self._function_of(name)
        if n_ch > 0:
            src = whole if whole is not None else s
            # (slicing only what is longer: a slice is a tensor op too, and most layers fit)
            if len(shape) >= 2:
                keep = src[:n_ch] if shape[0] > n_ch else src
            else:
                keep = src.reshape(-1)[:MAX_VECTOR] if len(shape) != 1 or shape[0] > MAX_VECTOR else src
            kept.outs[name] = keep if whole is not None else keep.clone()   # a private copy either way
            if kind == "pool" and selected and x is not None and pool is not None:
                xs = _sample(x, self._si)
                if xs is not None and xs.dim() >= 2:
                    kept.pool_in[name] = xs[: self._max_ch].clone()
                    kept.pool_geom[name] = pool

    def _function_of(self, name: str) -> tuple[str, tuple]:
        if name in self._fn:
            return self._fn[name]
        layer = self._layers.get(name)
        fn = layer.activation if layer and layer.activation else "other"
        return fn, tuple(layer.activation_params) if layer else ()

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
        self._kept = PassTensors()
        self._fn: dict[str, tuple[str, tuple]] = {}
        self._bad: dict[str, torch.Tensor] = {}
        self._grad_norms: dict[str, torch.Tensor] = {}
        self._collected = None

    def arm(self, layers="*", sample_index: int = 0, max_channels: int = 64, want_grads: bool = True, *,
            overview_channels: int = 0, stats: bool = True, track_nonfinite: bool = False,
            batch_observer=None) -> None:
        """Capture on the next forward pass(es) until ``disarm()``; clears the previous capture.

        ``layers``: names whose outputs (maps) to keep with ``max_channels`` channels, ``"*"``
        (or a collection containing ``"*"``) for all, or a ``CaptureRequest`` (its layers,
        max_channels and overview_channels). Other layers keep ``overview_channels``.
        ``stats``: keep every activation's input and output for its statistics;
        ``want_grads``: record activation-gradient norms in the backward pass;
        ``track_nonfinite``: flag layers whose output (whole batch) is non-finite;
        ``batch_observer``: see the module docstring (dropped by ``disarm()``).
        """
        if isinstance(layers, CaptureRequest):
            max_channels = layers.max_channels
            overview_channels = layers.overview_channels
            layers = layers.layers
        if isinstance(layers, str):
            layers = {layers}
        layers = set(layers)
        self._selected = None if "*" in layers else layers
        self._si = max(0, int(sample_index))
        self._max_ch = max(1, int(max_channels))
        self._overview_ch = max(0, int(overview_channels))
        self._want_grads = bool(want_grads)
        self._stats = bool(stats)
        self._track_nonfinite = bool(track_nonfinite)
        self._observer = batch_observer
        self._clear_pass()
        self._tracker.reset()
        self._armed = True

    def disarm(self) -> None:
        """Stop capturing; what was captured stays until the next ``arm()``."""
        self._armed = False
        self._observer = None
        self._tracker.reset()

    @property
    def armed(self) -> bool:
        return self._armed

    def functional(self):
        """Context for the forward pass: intercepts functional layers while armed.

        A no-op when disarmed, and when introspection found no functional
        layer: the mode routes every torch call of the pass through Python
        (~0.5 ms on a LeNet step), which buys nothing for such a model.
        """
        if not self._armed or not self._has_functional:
            return contextlib.nullcontext()
        return FunctionalLayerMode(self._on_functional)

    # ------------------------------------------------------------------ results

    def _order_key(self, name: str):
        i = self.info.index_of(name)
        return (0, i) if i >= 0 else (1, 0)

    def stage(self, flat):
        """Put the last armed pass into ``flat`` (a probe_reduce.HostCopy); returns ``finish()``, which
        gives the records after the caller's one host copy. The kept tensors are dropped."""
        kinds = {n: self._kind(n) for n in (*self._kept.outs, *self._kept.act_out)}
        finish = stage_pass(self._kept, kinds, self._order_key, flat)
        self._kept = PassTensors()
        return finish

    def collect(self) -> tuple[tuple[LayerCapture, ...], tuple[ActivationStats, ...]]:
        """Snapshot records of the last armed pass, execution order; the kept tensors are dropped after.

        Repeated calls return the same result until the next ``arm()``.
        """
        if self._collected is not None:
            return self._collected
        kinds = {n: self._kind(n) for n in (*self._kept.outs, *self._kept.act_out)}
        self._collected = reduce_pass(self._kept, kinds, self._order_key)
        # Only small things (flags, norms) outlive collect(): memory stays bounded.
        self._kept = PassTensors()
        return self._collected

    def act_grad_tensors(self) -> dict[str, torch.Tensor]:
        """The recorded activation-gradient norms still on the device (to be copied with other figures)."""
        return dict(self._grad_norms)

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
        """Every layer whose output the last armed pass saw."""
        return tuple(self._seen)

    # ------------------------------------------------------------------ kinds

    def _kind(self, name: str) -> str:
        layer = self._layers.get(name)
        return layer.kind if layer else ("activation" if name in self._fn else "other")

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
