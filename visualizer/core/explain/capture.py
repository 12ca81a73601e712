"""One looking-only forward pass that catches a layer's real input and output, and the activation after it.

The step-by-step explanations must start from what the layer really received, not from a
re-derivation: a forward hook on the layer keeps clones of its first call's input and
output (clones: an in-place ReLU that follows would overwrite them). The activation that
follows is found by identity: the first activation (a module such as ``nn.ReLU``, or a
function such as ``F.relu`` called in ``forward``) whose input *is* the layer's output
tensor. It is named as ``introspect`` names it, with the same ``CallTracker``.

The pass runs in eval mode under ``no_grad`` with every module's train/eval flag put back
(``introspect.eval_mode``), so looking never moves BatchNorm statistics, and every hook is
removed before returning.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from ..functional_calls import CallTracker, FunctionalLayerMode
from ..introspect import activation_of_module, eval_mode, first_tensor
from .records import ExplainError

# Not element-wise: the activation of one unit depends on the others, so it cannot be
# recomputed from that unit's sum alone.
NOT_ELEMENTWISE = ("softmax", "log_softmax")


@dataclass
class FollowingActivation:
    name: str
    function: str
    functional: bool
    apply: Callable[[torch.Tensor], torch.Tensor]   # the same function with the same parameters
    output: torch.Tensor | None = None              # (1, ...) clone of its real output


@dataclass
class LayerPass:
    module: nn.Module
    input: torch.Tensor                   # (1, ...) clone of the layer's real input (first call)
    output: torch.Tensor                  # (1, ...) clone of its real output (with keep_graph: the tensor itself)
    activation: FollowingActivation | None
    next_layer: str | None                # the first module run on the output (activation or not)
    model_output: Any = None              # what the model returned (with keep_graph: still in the graph)


def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters(), None)
    if p is None:
        return torch.device("cpu"), torch.float32
    return p.device, (p.dtype if p.is_floating_point() else torch.float32)


def as_batch(model: nn.Module, image: Any) -> torch.Tensor:
    """(C, H, W) or (1, C, H, W), numpy or torch, in the model's normalisation -> a (1, C, H, W) tensor."""
    # A copy: records and snapshots hold read-only arrays, which torch must not wrap.
    t = torch.tensor(np.array(image, dtype=np.float32)) if not isinstance(image, torch.Tensor) else image.detach()
    if t.dim() == 3:
        t = t[None]
    if t.dim() != 4 or t.shape[0] != 1:
        raise ExplainError(f"the input must be one image (C, H, W), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ExplainError("the input holds NaN or infinite values")
    device, dtype = model_device_dtype(model)
    return t.to(device=device, dtype=dtype)


def model_input(image01: np.ndarray, mean, std) -> np.ndarray:
    """(C, H, W) [0, 1] -> the model's normalisation, exactly as ``Inspector`` prepares a probe image."""
    img = np.asarray(image01, dtype=np.float32)
    m = np.asarray(mean, np.float32).reshape(-1, 1, 1)
    s = np.asarray(std, np.float32).reshape(-1, 1, 1)
    return np.ascontiguousarray((img - m) / np.where(s == 0, 1.0, s), dtype=np.float32)


def find_module(model: nn.Module, name: str, kinds: tuple[type, ...], what: str) -> nn.Module:
    """The submodule ``name``, which must be one of ``kinds``; else one ExplainError listing the candidates."""
    candidates = [n for n, m in model.named_modules() if n and isinstance(m, kinds)]
    try:
        m = model.get_submodule(name) if name else None
    except AttributeError:
        m = None
    if m is None:
        raise ExplainError(f"the model has no layer named {name!r}; its {what} layers: "
                           + (", ".join(candidates) or "none"))
    if not isinstance(m, kinds):
        raise ExplainError(f"{name!r} is a {type(m).__name__}, not a {what} layer; its {what} layers: "
                           + (", ".join(candidates) or "none"))
    return m


def run_layer_pass(model: nn.Module, x: torch.Tensor, name: str, module: nn.Module, *,
                   keep_graph: bool = False) -> LayerPass:
    """Forward ``x`` once (eval, flags restored) and keep what ``name`` saw and what followed it.

    Under ``no_grad`` with clones, unless ``keep_graph``: then autograd records the pass and
    the layer's output and the activation's output are the tensors of the graph themselves
    (for Grad-CAM's gradient); the caller must let go of them, which frees the graph.
    """
    tracker = CallTracker()

    def keep(t: torch.Tensor) -> torch.Tensor:
        # clone: an in-place activation that follows would overwrite the values (PITFALLS.md)
        return t if keep_graph else t.detach().clone()
    state: dict[str, Any] = {"in": None, "out": None, "obj": None, "act": None, "next": None}

    def pre(mod_name, mod):
        leaf = next(mod.children(), None) is None   # a block passing the output on is not "the next layer"
        act = activation_of_module(mod) if leaf else None

        def hook(m, args):
            tracker.push(mod_name, m)
            if leaf and state["obj"] is not None and state["next"] is None and args and args[0] is state["obj"]:
                state["next"] = mod_name
                if act is not None and state["act"] is None:
                    state["act"] = FollowingActivation(mod_name, act[0], False, lambda t, m=m: m(t))
                    state["act_module"] = m
            return None
        return hook

    def post(mod_name):
        def hook(m, args, out):
            if m is module and state["out"] is None:
                t = first_tensor(out)
                if t is not None and args and isinstance(args[0], torch.Tensor):
                    state["in"] = args[0].detach().clone()
                    state["out"] = keep(t)
                    state["obj"] = t              # the object the next layer receives
            act = state["act"]
            if act is not None and act.output is None and state.get("act_module") is m:
                t = first_tensor(out)
                act.output = None if t is None else keep(t)
            tracker.pop(mod_name)
            return None
        return hook

    def on_functional(spec, func, args, kwargs):
        if not tracker.records_functional() or not spec.is_layer_call(args, kwargs):
            return func(*args, **kwargs)
        fn_name, _ = tracker.functional_name(spec.name)
        out = func(*args, **kwargs)
        if state["obj"] is not None and state["next"] is None and args[0] is state["obj"]:
            state["next"] = fn_name     # F.max_pool2d(x, 2) right after the layer is its next layer too
            if spec.kind == "activation" and state["act"] is None:
                rest, kw = args[1:], dict(kwargs)
                state["act"] = FollowingActivation(fn_name, spec.name, True,
                                                   lambda t: func(t, *rest, **kw),
                                                   output=keep(out))
        return out

    handles = []
    try:
        for mod_name, m in model.named_modules():
            handles.append(m.register_forward_pre_hook(pre(mod_name, m)))
            handles.append(m.register_forward_hook(post(mod_name), always_call=True))
        grad_mode = torch.enable_grad() if keep_graph else torch.no_grad()
        with eval_mode(model), grad_mode, FunctionalLayerMode(on_functional):
            try:
                result = model(x)
            except Exception as e:
                raise ExplainError(f"the forward pass failed: {type(e).__name__}: {e}") from e
    finally:
        for h in handles:
            h.remove()
        state["obj"] = None
    if state["out"] is None:
        raise ExplainError(f"layer {name!r} was not called in the forward pass (eval mode)")
    return LayerPass(module=module, input=state["in"], output=state["out"], activation=state["act"],
                     next_layer=state["next"], model_output=result)


def apply_activation(act: FollowingActivation | None, channel: int, channels: int, value: float,
                     index: tuple[int, ...]):
    """(computed, real) activation values for one unit: the function applied to ``value``, and its real output.

    The function is applied to a (1, channels, 1, ...) tensor holding ``value`` in
    ``channel``, so per-channel activations (PReLU) use that channel's parameter.
    """
    if act is None or act.output is None:
        return None
    real = float(act.output[(0, *index)])
    computed = None
    if act.function not in NOT_ELEMENTWISE:
        shape = (1, channels) + (1,) * (act.output.dim() - 2)
        t = torch.zeros(shape, dtype=act.output.dtype, device=act.output.device)
        t[(0, channel) + (0,) * (act.output.dim() - 2)] = value
        with torch.no_grad():
            computed = float(act.apply(t)[(0, channel) + (0,) * (act.output.dim() - 2)])
    return computed, real
