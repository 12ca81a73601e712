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
from .introspect import ModelInfo, eval_mode, introspect
from .model_bundle import ModelBundle
from .outputs import class_scores_or_none
from .probe import Probe
from .reduce import levels_of, sanitize
from .snapshot import CaptureRequest, FilterCapture, GradientStats, ProbeSnapshot, frozen_array


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters(), None)
    if p is None:
        return torch.device("cpu"), torch.float32
    return p.device, (p.dtype if p.is_floating_point() else torch.float32)


def _as_probabilities(logits: torch.Tensor) -> np.ndarray:
    """Softmax of one sample's outputs, unless they already are (log-)probabilities.

    Many user models end in ``softmax``/``log_softmax`` (the classic MNIST
    example): a second softmax would flatten their confidence towards uniform.
    """
    v = logits.detach().float().reshape(-1).cpu()
    if v.numel() == 0:
        return frozen_array(np.zeros(0, np.float32))
    finite = torch.isfinite(v).all()
    if finite and (v >= 0).all() and (v <= 1).all() and abs(float(v.sum()) - 1.0) < 1e-3:
        p = v
    elif finite and (v <= 0).all() and abs(float(v.exp().sum()) - 1.0) < 1e-3:
        p = v.exp()
    else:
        p = torch.softmax(torch.nan_to_num(v, nan=0.0, posinf=1e4, neginf=-1e4), dim=0)
    out, _ = sanitize(p.numpy())
    return out


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
        self._weighted = [(l.name, m) for l in self.info.leaves() if not l.functional
                          for m in [self._module(l.name)]
                          if m is not None and isinstance(getattr(m, "weight", None), torch.Tensor)]

    @property
    def weighted_layers(self) -> tuple[tuple[str, nn.Module], ...]:
        """(name, module) of every layer with a weight tensor, in execution order."""
        return tuple(self._weighted)

    def _module(self, name: str) -> nn.Module | None:
        try:
            return self.model.get_submodule(name)
        except AttributeError:
            return None

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
              *, initial: dict | None = None, grads: bool = False) -> ProbeSnapshot:
        """One eval-mode, no-grad forward of one image; captures what ``request`` asks for.

        ``image01``: (C, H, W) in [0, 1]; defaults to ``request.probe_input``, then to
        a blank image. ``initial``/``grads`` are passed to :meth:`capture_filters`
        (weight change since training started, current weight gradients).
        """
        if image01 is None:
            image01 = request.probe_input
            label = request.probe_label if label is None else label
        if image01 is None:
            image01 = np.zeros(self.bundle.input_shape, np.float32)
        x = self._input_tensor(image01)
        layers = set(request.layers)
        captures, stats = (), ()
        with eval_mode(self.model), torch.no_grad():
            if self.layer_probe is not None:
                self.layer_probe.arm(layers, sample_index=0, max_channels=request.max_channels, want_grads=False)
                try:
                    with self.layer_probe.functional():
                        out = self.model(x)
                finally:
                    self.layer_probe.disarm()
                captures, stats = self.layer_probe.collect()
            else:
                out = self.model(x)
        logits = class_scores_or_none(out)  # the rule training uses: outputs.py
        probs = _as_probabilities(logits[0]) if logits is not None and logits.dim() > 0 else \
            frozen_array(np.zeros(0, np.float32))
        names = tuple(self.bundle.class_names)
        if len(names) != probs.size:
            names = tuple(str(i) for i in range(probs.size))
        shown, _ = sanitize(np.clip(np.asarray(image01, np.float32), 0.0, 1.0).reshape(self.bundle.input_shape))
        return ProbeSnapshot(
            input_image=shown, label=None if label is None else int(label), probabilities=probs,
            class_names=names, layers=captures, activations=stats,
            filters=self.capture_filters(request.filter_layers, initial=initial, grads=grads,
                                         max_channels=request.max_channels),
            request_id=request.request_id)

    # ------------------------------------------------------------------ filters

    def capture_filters(self, names, initial: dict | None = None, grads: bool = False,
                        max_channels: int = 64) -> tuple[FilterCapture, ...]:
        """Kernels of the named conv layers (copies, never aliases of the live weights).

        Names that are not conv layers of this model are skipped: a request can
        outlive the model it was made for.
        """
        out = []
        for name in names:
            m = self._module(name)
            if not isinstance(m, nn.modules.conv._ConvNd) or m.weight.dim() != 4:
                continue
            n = max(1, int(max_channels))
            # PITFALLS: .cpu().numpy() of a CPU tensor aliases the live weights;
            # sanitize() copies into a fresh read-only array.
            w, _ = sanitize(m.weight.detach()[:n].cpu().float().numpy())
            delta = None
            if initial is not None and name in initial:
                w0 = initial[name]
                w0 = w0.detach().cpu().float().numpy() if isinstance(w0, torch.Tensor) else np.asarray(w0)
                if w0.shape == tuple(m.weight.shape):
                    delta, _ = sanitize(w - w0[:n])
            g = None
            if grads and m.weight.grad is not None:
                g, _ = sanitize(m.weight.grad.detach()[:n].cpu().float().numpy())
            out.append(FilterCapture(name=name, weight=w, delta=delta, grad=g, levels=levels_of(w, signed=True),
                                     in_channels=int(m.in_channels), out_channels=int(m.out_channels),
                                     groups=int(m.groups)))
        return tuple(out)

    # ------------------------------------------------------------------ gradients

    def gradient_stats(self, prev_params: dict | None = None,
                       act_grad_norms: dict | None = None) -> tuple[GradientStats, ...]:
        """Gradient magnitudes of every layer with a weight, input to output.

        ``prev_params``: weights before the last optimizer step, keyed by layer
        name (or ``"<layer>.weight"``), for the update/weight ratio (0 without
        them). ``act_grad_norms``: output-gradient norms by layer, defaulting to
        what the probe recorded in its last armed pass. All norms are computed on
        the device and stacked, so there is one host copy per call.
        """
        if not self._weighted:
            return ()
        if act_grad_norms is None and self.layer_probe is not None:
            act_grad_norms = self.layer_probe.act_grad_norms()
        act_grad_norms = act_grad_norms or {}
        zero = torch.zeros((), device=_model_device_dtype(self.model)[0])
        rows = []
        for name, m in self._weighted:
            w = m.weight.detach()
            b = getattr(m, "bias", None)
            wn = torch.linalg.vector_norm(m.weight.grad.detach().float()) if m.weight.grad is not None else zero
            bn = torch.linalg.vector_norm(b.grad.detach().float()) if isinstance(b, torch.Tensor) and b.grad is not None else zero
            wl2 = torch.linalg.vector_norm(w.float())
            prev = None
            if prev_params:
                prev = prev_params.get(name, prev_params.get(f"{name}.weight"))
            if prev is not None:
                p = prev if isinstance(prev, torch.Tensor) else torch.as_tensor(np.asarray(prev))
                p = p.detach().to(device=w.device, dtype=torch.float32)
                dn = torch.linalg.vector_norm(w.float() - p) if p.shape == w.shape else zero
            else:
                dn = zero
            rows.append(torch.stack([wn.to(zero.device), bn.to(zero.device), wl2.to(zero.device), dn.to(zero.device)]))
        vals = torch.stack(rows).cpu().tolist()    # the one device → host copy
        out = []
        for (name, m), (wn, bn, wl2, dn) in zip(self._weighted, vals):
            has_bias = isinstance(getattr(m, "bias", None), torch.Tensor)
            ratio = dn / wl2 if wl2 > 0 else 0.0
            agn = act_grad_norms.get(name)
            out.append(GradientStats(name=name, weight_norm=_finite(wn), bias_norm=_finite(bn) if has_bias else None,
                                     weight_l2=_finite(wl2), update_ratio=_finite(ratio),
                                     act_grad_norm=None if agn is None else _finite(agn)))
        return tuple(out)

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
                self.layer_probe.arm((), sample_index=0, want_grads=False)
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
