"""Class activation maps: where the model looks for a class, on the real model, with hooks of our own.

- **CAM** (Zhou et al. 2016, "Learning Deep Features for Discriminative Localization"): for a
  model that ends in global average pooling and one linear layer, the map of class c is
  sum_k w[c, k] * f_k, the last feature maps f_k weighted by that class's weights. Which maps
  are pooled is found, not assumed: the last module output whose spatial mean *is* the final
  linear layer's input (so a ``torch.mean`` in ``forward`` counts as much as an
  ``AdaptiveAvgPool2d``). The bias is left out: a constant does not say where.
- **Grad-CAM** (Selvaraju et al. 2017): for any conv layer of any model, alpha_k = the mean
  over positions of d score_c / d A_k, and the map is ReLU(sum_k alpha_k * A_k). A are the
  layer's maps after the activation that directly follows it, when one does (the rectified
  maps of the paper); the gradient comes from ``torch.autograd.grad`` on those maps, never
  from ``register_full_backward_hook`` (PITFALLS.md: it breaks on an in-place ReLU).

Both keep only the positive part and scale it to [0, 1] (divided by its maximum, after
bilinear upsampling to the input's size), so the two are comparable: for a model that ends
in global average pooling and a linear layer, Grad-CAM on the pooled maps gives CAM's map.

Looking leaves training alone: eval mode with every module's flag put back, BatchNorm
statistics untouched, no ``.grad`` written on any parameter (``autograd.grad`` returns the
gradient instead of accumulating it), every hook removed, and the graph let go on return.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..introspect import eval_mode, first_tensor, introspect
from ..reduce import probabilities
from ..snapshot import frozen_array
from .capture import as_batch, model_input, run_layer_pass
from .records import CAM_METHODS, ClassActivationMap, ExplainError, default_grad_cam_layer


def _logits(out) -> torch.Tensor:
    t = first_tensor(out)
    if t is None or t.dim() != 2 or t.shape[0] != 1:
        raise ExplainError("the model's output is not one row of class scores "
                           f"(got {None if t is None else tuple(t.shape)})")
    return t[0]


def _pick_class(logits: torch.Tensor, class_index: int | None) -> int:
    k = int(logits.numel())
    if class_index is None:
        return int(torch.argmax(logits.detach()))
    if not (isinstance(class_index, (int, np.integer)) and 0 <= int(class_index) < k):
        raise ExplainError(f"class {class_index!r} is out of range: the model has classes 0..{k - 1}")
    return int(class_index)


def _record(method, layer, source, raw: torch.Tensor, logits: torch.Tensor, c: int, x: torch.Tensor,
            image01, class_names) -> ClassActivationMap:
    raw = torch.relu(torch.nan_to_num(raw.detach().float(), nan=0.0, posinf=0.0, neginf=0.0))
    size = tuple(int(s) for s in x.shape[-2:])
    up = F.interpolate(raw[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    peak = float(up.max()) if up.numel() else 0.0
    heat = (up / peak).clamp_(0.0, 1.0) if peak > 0 else torch.zeros_like(up)
    probs = probabilities(logits.detach().float().cpu().numpy())
    names = tuple(class_names) if len(class_names) == logits.numel() else tuple(str(i) for i in range(logits.numel()))
    if image01 is None:     # no [0, 1] image given: show the normalised input stretched to [0, 1]
        a = x[0].detach().float()
        span = float(a.max() - a.min())
        image01 = ((a - a.min()) / span if span > 0 else torch.zeros_like(a)).cpu().numpy()
    return ClassActivationMap(
        method=method, layer=layer, source_layer=source, class_index=c, class_name=names[c],
        predicted=int(torch.argmax(logits.detach())), score=float(logits[c]), probabilities=probs,
        heatmap=frozen_array(heat.cpu().numpy()), raw=frozen_array(raw.cpu().numpy()),
        peak=float(raw.max()) if raw.numel() else 0.0,
        input_image=frozen_array(np.clip(np.asarray(image01, np.float32), 0.0, 1.0)), class_names=names)


# ------------------------------------------------------------------ Grad-CAM

def _named_layer(model: nn.Module, name: str) -> nn.Module:
    """Any layer will do for Grad-CAM (a conv, a block, an activation) as long as its output is a map."""
    try:
        return model.get_submodule(name) if name else None
    except AttributeError:
        pass
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    raise ExplainError(f"the model has no layer named {name!r}; its Conv2d layers: {', '.join(convs) or 'none'}")


def grad_cam(model: nn.Module, image, *, layer: str | None = None, class_index: int | None = None,
             class_names=(), image01=None) -> ClassActivationMap:
    """Grad-CAM of ``class_index`` (default: the predicted class) at ``layer`` (default: the last conv
    layer whose output is still a map). ``image``: one input in the model's normalisation."""
    x = as_batch(model, image)
    if layer is None:
        layer = default_grad_cam_layer(introspect(model, tuple(x.shape[1:])))
        if layer is None:
            raise ExplainError("the model has no conv layer with a spatial output (more than 1x1) for Grad-CAM")
    module = _named_layer(model, layer)
    # The input takes part in the graph so that maps have a gradient even when every weight is frozen.
    x = x.detach().clone().requires_grad_(True)
    lp = run_layer_pass(model, x, layer, module, keep_graph=True)
    act = lp.activation
    maps, source = (act.output, act.name) if act is not None and act.output is not None else (lp.output, layer)
    if maps.dim() != 4:
        raise ExplainError(f"{layer!r} gives an output of shape {tuple(maps.shape)}; Grad-CAM needs maps (1, C, H, W)")
    logits = _logits(lp.model_output)
    c = _pick_class(logits, class_index)
    if not maps.requires_grad:
        raise ExplainError(f"the class score does not depend on {layer!r}'s output")
    (grad,) = torch.autograd.grad(logits[c], maps, allow_unused=True)
    if grad is None:
        raise ExplainError(f"the class score does not depend on {layer!r}'s output")
    alpha = grad[0].mean(dim=(1, 2))                                  # (C,): global-average-pooled gradients
    raw = (alpha[:, None, None] * maps[0].detach()).sum(dim=0)
    return _record("grad-cam", layer, source, raw, logits.detach(), c, x, image01, class_names)


# ------------------------------------------------------------------ CAM

def _pooled_maps(model: nn.Module, x: torch.Tensor):
    """(name of the module whose maps are averaged, those maps (1, K, h, w), the final Linear, logits).

    Raises ExplainError, saying why, when the model does not end in global average pooling and one Linear.
    """
    order: list[tuple[str, nn.Module, torch.Tensor]] = []       # every Linear call: (name, module, input)
    maps: list[tuple[str, torch.Tensor]] = []                   # 4-D module outputs that could be pooled
    widths = {m.in_features for m in model.modules() if isinstance(m, nn.Linear)}   # keep only maps that fit one
    handles = []

    def hook(name):
        def record(m, args, out):
            t = first_tensor(out)
            if isinstance(m, nn.Linear) and args and isinstance(args[0], torch.Tensor):
                order.append((name, m, args[0].detach().clone()))
            if t is not None and t.dim() == 4 and t.shape[1] in widths and t.shape[-1] * t.shape[-2] > 1:
                maps.append((name, t.detach().clone()))
        return record

    try:
        for name, m in model.named_modules():
            if name:
                handles.append(m.register_forward_hook(hook(name)))
        with eval_mode(model), torch.no_grad():
            out = model(x)
    except Exception as e:
        raise ExplainError(f"the forward pass failed: {type(e).__name__}: {e}") from e
    finally:
        for h in handles:
            h.remove()
    logits = _logits(out)
    if not order:
        raise ExplainError("the model has no Linear layer: CAM needs global average pooling and one Linear at the "
                           "end; use Grad-CAM")
    fc_name, fc, fc_in = order[-1]
    with torch.no_grad():
        last = fc(fc_in)
    if fc_in.dim() != 2 or last.shape != (1, logits.numel()) or not torch.allclose(last[0], logits, atol=1e-5):
        raise ExplainError(f"the last Linear layer {fc_name!r} does not produce the model's output: CAM needs "
                           "global average pooling and one Linear at the end; use Grad-CAM")
    k = fc.in_features
    scale = 1e-5 * (1.0 + float(fc_in.abs().max()))
    for name, t in reversed(maps):
        if t.shape[1] == k and torch.allclose(t.mean(dim=(2, 3)), fc_in, atol=scale):
            return name, t, fc, logits
    raise ExplainError(f"the last Linear layer {fc_name!r} takes {k} inputs that are not the global average of "
                       "a feature map: CAM needs global average pooling and one Linear at the end; use Grad-CAM")


def supports_cam(model: nn.Module, image) -> bool:
    try:
        _pooled_maps(model, as_batch(model, image))
    except ExplainError:
        return False
    return True


def cam(model: nn.Module, image, *, class_index: int | None = None, class_names=(), image01=None) -> ClassActivationMap:
    """CAM of ``class_index`` (default: the predicted class) for a model ending in global average pooling + Linear."""
    x = as_batch(model, image)
    name, f, fc, logits = _pooled_maps(model, x)
    c = _pick_class(logits, class_index)
    w = fc.weight.detach()[c].to(f.dtype)                              # (K,)
    raw = (w[:, None, None] * f[0]).sum(dim=0)
    return _record("cam", name, name, raw, logits, c, x, image01, class_names)


# ------------------------------------------------------------------ one entry point

def class_activation_map(model: nn.Module, image, *, method: str = "auto", layer: str | None = None,
                         class_index: int | None = None, class_names=(), image01=None) -> ClassActivationMap:
    """``method``: "cam", "grad-cam", or "auto" (CAM when the model allows it and no layer is named)."""
    if method not in CAM_METHODS:
        raise ExplainError(f"unknown method {method!r}; one of {', '.join(CAM_METHODS)}")
    if method == "cam" or (method == "auto" and layer is None and supports_cam(model, image)):
        return cam(model, image, class_index=class_index, class_names=class_names, image01=image01)
    return grad_cam(model, image, layer=layer, class_index=class_index, class_names=class_names, image01=image01)


def cam_for_bundle(bundle, image01: np.ndarray, **kw) -> ClassActivationMap:
    """The same for a ModelBundle and a [0, 1] image: normalised as the probe normalises it, classes named."""
    x = model_input(image01, bundle.mean, bundle.std)
    return class_activation_map(bundle.model, x, class_names=bundle.class_names, image01=image01, **kw)
