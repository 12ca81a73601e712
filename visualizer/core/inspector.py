"""Looking at a model without training it: one probe pass, filters, gradient statistics.

The ``Inspector`` owns the model's one :class:`Probe` (hooks registered once,
removed in ``close()``) and lives in the thread that owns the model (the
worker). Every visualisation pass runs in eval mode under ``no_grad`` and puts
each module's previous train/eval flag back, so looking never moves BatchNorm
statistics (DESIGN.md, "visualisation-only forward passes").
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from .errors import ModelError
from .functional_calls import CalledWeights
from .introspect import ModelInfo, eval_mode, introspect, one_sample_kernels
from .model_bundle import ModelBundle
from .outputs import class_scores_or_none
from .packed_pass import Later, Unbuilt
from .probe import Probe
from .probe_reduce import HostCopy
from .reduce import probabilities, sanitize
from .snapshot import CaptureRequest, FilterCapture, GradientStats, ProbeSnapshot, frozen_array


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters(), None)
    if p is None:
        return torch.device("cpu"), torch.float32
    return p.device, (p.dtype if p.is_floating_point() else torch.float32)


class Inspector:
    """One probe pass at a time on ``bundle.model``; see the module docstring."""

    def __init__(self, bundle: ModelBundle, info: ModelInfo | None = None):
        self.bundle = bundle
        self.model = bundle.model
        if not bundle.probeable:
            # TorchScript: no hooks. Predictions still work; layer views stay empty.
            self.info = info or ModelInfo(layers=(), input_shape=tuple(bundle.input_shape),
                                          total_params=sum(p.numel() for p in self.model.parameters()),
                                          num_outputs=len(bundle.class_names))
            self.layer_probe: Probe | None = None
        else:
            self.info = info if info is not None else introspect(self.model, bundle.input_shape)
            self.layer_probe = Probe(self.model, self.info)
        self._weighted = [(l.name, m) for l in self.info.leaves()
                          for m in [self._weight_owner(l)]
                          if m is not None and isinstance(getattr(m, "weight", None), torch.Tensor)]

    @property
    def weighted_layers(self) -> tuple[tuple[str, nn.Module | CalledWeights], ...]:
        """(name, owner) of every layer with a weight tensor, in execution order: the module, or for a
        functional conv/linear the CalledWeights holding the Parameters it was called with
        (both have ``.weight`` and ``.bias``)."""
        return tuple(self._weighted)

    @property
    def conv_layers(self) -> tuple[tuple[str, nn.Module | CalledWeights], ...]:
        """(name, owner) of every 2-D convolution, module or call: the layers that have filters to show."""
        return tuple((n, m) for n, m in self._weighted if m.weight.dim() == 4 and self._is_conv(n, m))

    def _is_conv(self, name: str, owner) -> bool:
        if isinstance(owner, CalledWeights):
            layer = self.info.by_name(name)
            return layer is not None and layer.kind in ("conv", "depthwise_conv")
        return isinstance(owner, nn.modules.conv._ConvNd)

    def _module(self, name: str) -> nn.Module | None:
        try:
            return self.model.get_submodule(name)
        except AttributeError:
            return None

    def _weight_owner(self, layer) -> nn.Module | CalledWeights | None:
        if not layer.functional:
            return self._module(layer.name)
        if layer.weight is None:
            return None
        try:
            weight = self.model.get_parameter(layer.weight)
            bias = self.model.get_parameter(layer.bias) if layer.bias else None
        except AttributeError:
            return None   # info from another version of the model
        groups = dict(layer.call_args).get("groups", 1)
        return CalledWeights(weight=weight, bias=bias, groups=int(groups) if isinstance(groups, int) else 1)

    # ------------------------------------------------------------------ one probe pass

    def _input_tensor(self, image01: np.ndarray) -> torch.Tensor:
        c, h, w = self.bundle.input_shape
        img = np.asarray(image01, dtype=np.float32)
        if img.ndim == 2 and c == 1:
            img = img[None]
        if img.shape != (c, h, w):
            raise ModelError(f"the probe image has shape {img.shape}; the model takes {(c, h, w)}")
        mean = np.asarray(self.bundle.mean, np.float32).reshape(-1, 1, 1)
        std = np.asarray(self.bundle.std, np.float32).reshape(-1, 1, 1)
        x = (img - mean) / np.where(std == 0, 1.0, std)
        device, dtype = _model_device_dtype(self.model)
        return torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=dtype)[None]

    def probe(self, request: CaptureRequest, image01: np.ndarray | None = None, label: int | None = None,
              *, initial: dict | None = None, grads: bool = False, also: list | None = None):
        """One eval-mode, no-grad forward of one image; captures what ``request`` asks for.

        ``image01``: (C, H, W) in [0, 1]; defaults to ``request.probe_input``, then to
        a blank image. ``initial``/``grads`` are passed to :meth:`capture_filters`
        (weight change since training started, current weight gradients).
        Everything travels to the host in one copy. ``also``: functions ``stage(host_copy) ->
        finish`` that put other figures into the same copy (``stage_gradients``, a recorder's
        losses); then ``(snapshot, [finish() of each])`` is returned.
        """
        if image01 is None:
            image01 = request.probe_input
            label = request.probe_label if label is None else label
        if image01 is None:
            image01 = np.zeros(self.bundle.input_shape, np.float32)
        x = self._input_tensor(image01)
        flat = HostCopy(x.device)
        finish_pass = None
        with eval_mode(self.model), torch.no_grad(), one_sample_kernels(x.device):
            if self.layer_probe is not None:
                self.layer_probe.arm(set(request.layers), sample_index=0, max_channels=request.max_channels,
                                     want_grads=False, overview_channels=request.overview_channels)
                try:
                    with self.layer_probe.functional():
                        out = self.model(x)
                finally:
                    self.layer_probe.disarm()
                finish_pass = self.layer_probe.stage(flat)
            else:
                out = self.model(x)
        logits = class_scores_or_none(out)  # the rule training uses: outputs.py
        logits_i = flat.add(logits[0]) if logits is not None and logits.dim() > 0 else None
        finish_filters = self._stage_filters(request.filter_layers, flat, initial=initial, grads=grads,
                                             max_channels=request.max_channels)
        finish_also = [stage(flat) for stage in (also or ())]
        flat.copy_to_host()                                   # the device -> host copy (one wait)
        if finish_pass is not None:
            packed = finish_pass()      # built where the snapshot is first read (packed_pass.py)
            captures, stats = Unbuilt(packed, 0), Unbuilt(packed, 1)
        else:
            captures, stats = (), ()
        probs = Later(probabilities, flat.take(logits_i)) if logits_i is not None else \
            frozen_array(np.zeros(0, np.float32))
        names = tuple(self.bundle.class_names)
        k = logits[0].numel() if logits_i is not None else 0
        if len(names) != k:
            names = tuple(str(i) for i in range(k))
        shown, _ = sanitize(np.clip(np.asarray(image01, np.float32), 0.0, 1.0).reshape(self.bundle.input_shape))
        snap = ProbeSnapshot(
            input_image=shown, label=None if label is None else int(label), probabilities=probs,
            class_names=names, layers=captures, activations=stats, filters=finish_filters(),
            request_id=request.request_id)
        if also is None:
            return snap
        return snap, [finish() for finish in finish_also]

    # ------------------------------------------------------------------ filters

    def capture_filters(self, names, initial: dict | None = None, grads: bool = False,
                        max_channels: int = 64) -> tuple[FilterCapture, ...]:
        """Kernels of the named conv layers, modules or ``F.conv2d`` calls (copies, never aliases of the
        live weights).

        Names that are not conv layers of this model are skipped: a request can
        outlive the model it was made for.
        """
        flat = HostCopy(_model_device_dtype(self.model)[0])
        finish = self._stage_filters(names, flat, initial=initial, grads=grads, max_channels=max_channels)
        flat.copy_to_host()
        return finish()

    def _stage_filters(self, names, flat: HostCopy, *, initial: dict | None, grads: bool, max_channels: int):
        staged = []
        convs = dict(self.conv_layers)
        for name in names:
            m = convs.get(name)
            if m is None:
                continue
            n = max(1, int(max_channels))
            w_i = flat.add(m.weight.detach()[:n])
            g_i = flat.add(m.weight.grad.detach()[:n]) if grads and m.weight.grad is not None else None
            w0 = None
            if initial is not None and name in initial:
                w0 = initial[name]
                w0 = w0.detach().cpu().float().numpy() if isinstance(w0, torch.Tensor) else np.asarray(w0)
                w0 = w0[:n] if w0.shape == tuple(m.weight.shape) else None
            staged.append((name, m, w_i, g_i, w0))

        def finish() -> tuple[FilterCapture, ...]:
            out = []
            for name, m, w_i, g_i, w0 in staged:
                # The host copy is private (never an alias of the live weights, PITFALLS), finite and frozen.
                w = flat.take(w_i)
                delta = None
                if w0 is not None:
                    delta, _ = sanitize(w - w0)
                g = flat.take(g_i) if g_i is not None else None
                out.append(FilterCapture(name=name, weight=w, delta=delta, grad=g, in_channels=int(m.in_channels),
                                         out_channels=int(m.out_channels), groups=int(m.groups)))
            return tuple(out)
        return finish

    # ------------------------------------------------------------------ gradients

    def gradient_stats(self, prev_params: dict | None = None, act_grad_norms: dict | None = None, *,
                       reuse_prev: bool = False) -> tuple[GradientStats, ...]:
        """Gradient magnitudes of every layer with a weight, input to output.

        ``prev_params``: weights before the last optimizer step, keyed by layer
        name (or ``"<layer>.weight"``), for the update/weight ratio (0 without
        them). ``act_grad_norms``: output-gradient norms by layer, defaulting to
        what the probe recorded in its last armed pass. ``reuse_prev``: the
        ``prev_params`` tensors are the caller's scratch copies, overwritten with the
        change. All norms are computed on the device, with one host copy per call.
        """
        flat = HostCopy(_model_device_dtype(self.model)[0])
        finish = self.stage_gradients(flat, prev_params, act_grad_norms, reuse_prev=reuse_prev)
        flat.copy_to_host()
        return finish()

    def stage_gradients(self, flat: HostCopy, prev_params: dict | None = None, act_grad_norms: dict | None = None,
                        *, reuse_prev: bool = False):
        """Put the gradient figures into ``flat``; returns ``finish()`` giving the GradientStats after the copy
        (the arguments: :meth:`gradient_stats`)."""
        if not self._weighted:
            return lambda: ()
        recorded = {}
        if act_grad_norms is None and self.layer_probe is not None:
            recorded = self.layer_probe.act_grad_tensors()   # copied to the host with the rest
        given = dict(act_grad_norms or {})
        device = flat.device
        one = torch.zeros(1, device=device)
        weights = [m.weight.detach() for _, m in self._weighted]
        biases = [getattr(m, "bias", None) for _, m in self._weighted]
        grads = [w.grad.detach() if (w := m.weight).grad is not None else one for _, m in self._weighted]
        bias_grads = [b.grad.detach() if isinstance(b, torch.Tensor) and b.grad is not None else one for b in biases]
        deltas = []
        if prev_params:
            now, before = [], []     # the pairs to subtract, in one fused call
            for (name, _m), w in zip(self._weighted, weights):
                prev = prev_params.get(name, prev_params.get(f"{name}.weight"))
                if prev is not None:
                    p = prev if isinstance(prev, torch.Tensor) else torch.as_tensor(np.asarray(prev))
                    p = p.detach().to(device=w.device, dtype=w.dtype)
                    if p.shape == w.shape:
                        now.append(w)
                        before.append(p)
                        continue
                now.append(one)
                before.append(one)      # no earlier weight: a change of 0
            if reuse_prev:          # into the caller's scratch copies: no new tensors the model's size
                torch._foreach_sub_(before, now)
                deltas = before
            else:
                deltas = torch._foreach_sub(now, before)
        # One fused norm call for every figure instead of four calls per layer (the foreach kernels
        # that clip_grad_norm_ uses).
        parts = list(torch._foreach_norm([*grads, *bias_grads, *weights, *deltas]))
        names = list(recorded)
        parts += [recorded[n] for n in names]
        index = flat.add(torch.stack(parts).float() if all(t.dim() == 0 and t.device == device and t.dtype == parts[0].dtype
                                                           for t in parts)
                         else torch.stack([t.float().reshape(()).to(device) for t in parts]))

        def finish() -> tuple[GradientStats, ...]:
            vals = flat.take(index).tolist()
            k = len(self._weighted)
            act = {**dict(zip(names, vals[len(vals) - len(names):])), **given}
            out = []
            for i, ((name, _m), b) in enumerate(zip(self._weighted, biases)):
                wn, bn, wl2 = vals[i], vals[k + i], vals[2 * k + i]
                dn = vals[3 * k + i] if prev_params else 0.0
                ratio = dn / wl2 if wl2 > 0 else 0.0
                agn = act.get(name)
                out.append(GradientStats(name=name, weight_norm=_finite(wn),
                                         bias_norm=_finite(bn) if isinstance(b, torch.Tensor) else None,
                                         weight_l2=_finite(wl2), update_ratio=_finite(ratio),
                                         act_grad_norm=None if agn is None else _finite(agn)))
            return tuple(out)
        return finish

    # ------------------------------------------------------------------ divergence

    def first_nonfinite_layer(self, x: torch.Tensor) -> str | None:
        """Re-run one armed, no-grad pass on batch ``x``; the first layer with a NaN/inf output.

        Runs in the model's current mode (the one that diverged) and puts every
        buffer (BatchNorm running statistics) back afterwards.
        """
        if self.layer_probe is None:
            return None
        buffers = [(b, b.detach().clone()) for b in self.model.buffers()]
        try:
            with torch.no_grad():
                self.layer_probe.arm((), sample_index=0, want_grads=False, stats=False, track_nonfinite=True)
                try:
                    with self.layer_probe.functional():
                        self.model(x)
                finally:
                    self.layer_probe.disarm()
            return self.layer_probe.first_nonfinite_layer()
        finally:
            with torch.no_grad():
                for b, saved in buffers:
                    b.copy_(saved)

    def close(self) -> None:
        if self.layer_probe is not None:
            self.layer_probe.close()
            self.layer_probe = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _finite(v: float) -> float:
    """Views plot these; a NaN or inf would break autoscaling (NaN → 0, ±inf → ±float32 max)."""
    v = float(v)
    if v != v:
        return 0.0
    return max(-_FLOAT32_MAX, min(_FLOAT32_MAX, v))
