"""Any ``nn.Module`` → an ordered list of its layers (name, kind, output shape, parameters).

One dummy forward pass (eval mode, ``no_grad``, every module's previous
train/eval flag restored, so BatchNorm buffers never move) with a forward
pre-hook and hook on every module records the execution order and each
module's output shape. Layers written as calls inside ``forward`` (``F.relu(x)``,
``F.conv2d(x, self.w1)``, ``F.max_pool2d(x, 2)``, ``torch.flatten(x, 1)``, ``out +
identity``) have no module to hook; ``functional_calls.FunctionalLayerMode`` intercepts
them during the pass and records them as pseudo-layers (``functional=True``), named as
that module's docstring says (``layer1.0.F.relu_1``, ``F.max_pool2d``); the ``F.``
segment keeps them apart from a real submodule that is itself called ``relu``. A
functional conv or linear names the model Parameters it was called with (``weight``,
``bias``), so its filters and gradients are found like a module's.

Modules called several times in one forward (a shared ``nn.ReLU``) are listed
once, at their first call, with that call's shape; ``calls`` and ``detail`` say so.
"""
from __future__ import annotations

import inspect
import threading
import typing
from collections.abc import Mapping

import torch
import torch.nn as nn

from .errors import ModelError
from .functional_calls import CallTracker, FunctionalLayerMode, call_arguments, called_weights, describe_call
from .model_info import LayerInfo, ModelInfo

# Sizes tried, in order, when the input size is unknown: the common datasets
# first (CIFAR 32, MNIST 28), then the common ImageNet-style crops.
CANDIDATE_SIZES = (32, 28, 64, 224, 96, 299, 128, 227, 256, 48, 16, 112, 160, 384, 512)


# --------------------------------------------------------------------------- kinds

# torch.nn activation classes → canonical function name and the float
# attributes that parametrise them. Looked up along the MRO, most derived first
# (ReLU6 subclasses Hardtanh).
_ACTIVATION_MODULES: dict[type, tuple[str, tuple[str, ...]]] = {
    nn.ReLU: ("relu", ()), nn.ReLU6: ("relu6", ()), nn.LeakyReLU: ("leaky_relu", ("negative_slope",)),
    nn.ELU: ("elu", ("alpha",)), nn.CELU: ("celu", ("alpha",)), nn.SELU: ("selu", ()),
    nn.GELU: ("gelu", ()), nn.SiLU: ("silu", ()), nn.Mish: ("mish", ()),
    nn.Sigmoid: ("sigmoid", ()), nn.Tanh: ("tanh", ()), nn.Hardtanh: ("hardtanh", ("min_val", "max_val")),
    nn.Hardswish: ("hardswish", ()), nn.Hardsigmoid: ("hardsigmoid", ()), nn.PReLU: ("prelu", ()),
    nn.Softplus: ("softplus", ("beta", "threshold")), nn.Softsign: ("softsign", ()),
    nn.Softmax: ("softmax", ()), nn.LogSoftmax: ("log_softmax", ()), nn.Softmax2d: ("softmax", ()),
    nn.Tanhshrink: ("tanhshrink", ()), nn.LogSigmoid: ("logsigmoid", ()),
}
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
          nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
          nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
          nn.LPPool1d, nn.LPPool2d, nn.FractionalMaxPool2d, nn.FractionalMaxPool3d)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm,
          nn.LayerNorm, nn.LocalResponseNorm, *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))
_LINEARS = (nn.Linear, nn.Bilinear)
_DROPOUTS = (nn.modules.dropout._DropoutNd, nn.AlphaDropout, nn.FeatureAlphaDropout)


def activation_of_module(m: nn.Module) -> tuple[str, tuple[tuple[str, float], ...]] | None:
    """(function name, float parameters) if ``m`` is a torch activation module, else None."""
    for cls in type(m).__mro__:
        spec = _ACTIVATION_MODULES.get(cls)
        if spec is not None:
            fn, attrs = spec
            params = tuple((a, float(getattr(m, a))) for a in attrs
                           if isinstance(getattr(m, a, None), (int, float)))
            return fn, params
    return None


def kind_of(m: nn.Module) -> str:
    if next(m.children(), None) is not None:
        return "block"
    if isinstance(m, nn.modules.conv._ConvNd):
        depthwise = m.groups > 1 and m.groups == m.in_channels
        return "depthwise_conv" if depthwise else "conv"
    if isinstance(m, _POOLS):
        return "pool"
    if activation_of_module(m) is not None:
        return "activation"
    if isinstance(m, _NORMS):
        return "norm"
    if isinstance(m, _LINEARS):
        return "linear"
    if isinstance(m, _DROPOUTS):
        return "dropout"
    return "other"


def _pair(v) -> str:
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    if len(v) > 1 and all(x == v[0] for x in v):
        v = (v[0],)
    return "x".join(str(x) for x in v)


def _kernel_text(v) -> str:
    v = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    return "x".join(str(x) for x in v)


def describe(m: nn.Module, kind: str) -> str:
    """Short human text for the layer tree: "5x5 s1 p0", "max 2x2 s2", "120 → 84", ..."""
    if kind in ("conv", "depthwise_conv"):
        text = f"{_kernel_text(m.kernel_size)} s{_pair(m.stride)} p{_pair(m.padding) if not isinstance(m.padding, str) else m.padding}"
        if any(d != 1 for d in (m.dilation if isinstance(m.dilation, tuple) else (m.dilation,))):
            text += f" d{_pair(m.dilation)}"
        if m.groups > 1:
            text += f" groups={m.groups}"
        return f"{text}, {m.in_channels}→{m.out_channels}"
    if kind == "pool":
        mode = "max" if "Max" in type(m).__name__ else ("lp" if "LP" in type(m).__name__ else "avg")
        if "Adaptive" in type(m).__name__:
            return f"adaptive {mode} → {_kernel_text(m.output_size)}"
        ks = getattr(m, "kernel_size", None)
        stride = getattr(m, "stride", None) or ks
        pad = getattr(m, "padding", 0)
        text = f"{mode} {_kernel_text(ks)} s{_pair(stride)}"
        return text + (f" p{_pair(pad)}" if pad not in (0, (0, 0)) else "")
    if kind == "activation":
        fn, params = activation_of_module(m)
        inner = ", ".join(f"{k}={v:g}" for k, v in params)
        inplace = ", inplace" if getattr(m, "inplace", False) else ""
        return f"{type(m).__name__}({inner}{inplace})" if inner or inplace else type(m).__name__
    if kind == "norm":
        n = getattr(m, "num_features", None) or getattr(m, "num_channels", None)
        return f"{type(m).__name__}({n})" if n else type(m).__name__
    if kind == "linear" and isinstance(m, nn.Linear):
        return f"{m.in_features} → {m.out_features}"
    if kind == "dropout":
        return f"p={getattr(m, 'p', 0):g}"
    return type(m).__name__


# --------------------------------------------------------------------------- signature, input size

def _is_mapping_annotation(ann) -> bool:
    if ann is inspect.Parameter.empty:
        return False
    if isinstance(ann, str):
        head = ann.strip().split("[")[0].split(".")[-1].lower()
        return head in ("dict", "mapping", "mutablemapping", "ordereddict")
    origin = typing.get_origin(ann) or ann
    return isinstance(origin, type) and issubclass(origin, Mapping)


def check_forward_signature(model: nn.Module) -> None:
    """Raise ModelError unless ``model.forward`` can be called with one image tensor."""
    try:
        sig = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return  # builtin / scripted forward: nothing to read, let the dummy pass decide
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    var_pos = any(p.kind is p.VAR_POSITIONAL for p in params)
    required_kw = [p for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if len(required) > 1:
        names = ", ".join(p.name for p in required)
        raise ModelError(f"forward(self, {names}) takes {len(required)} inputs; "
                         "the visualizer feeds one image tensor")
    if required_kw:
        names = ", ".join(p.name for p in required_kw)
        raise ModelError(f"forward(...) requires keyword argument(s) {names}; "
                         "the visualizer feeds one image tensor")
    if not positional and not var_pos:
        raise ModelError("forward(self) takes no input; the visualizer feeds one image tensor")
    first = positional[0] if positional else None
    if first is not None and _is_mapping_annotation(first.annotation):
        raise ModelError(f"forward(self, {first.name}: dict) takes a dict of inputs; "
                         "the visualizer feeds one image tensor")


def first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for o in out:
            t = first_tensor(o)
            if t is not None:
                return t
    if isinstance(out, Mapping):
        for o in out.values():
            t = first_tensor(o)
            if t is not None:
                return t
    # namedtuple-like outputs (torchvision GoogLeNetOutputs) are tuples: handled above
    return None


def _dummy_input(model: nn.Module, shape) -> torch.Tensor:
    p = next(model.parameters(), None)
    if p is None:
        p = next(model.buffers(), None)
    device = p.device if p is not None else torch.device("cpu")
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    return torch.zeros((1, *shape), device=device, dtype=dtype)


class eval_mode:
    """Eval mode for the duration, then every module's own previous flag back.

    Restoring per module (not ``model.train(prev)``) keeps a user's mix of
    frozen-eval and training submodules intact.
    """

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        # ``training`` is a plain instance attribute; writing the instance dicts skips
        # nn.Module.__setattr__, which was a tenth of a LeNet probe pass.
        self._modes = [(m.__dict__, m.training) for m in self.model.modules()]
        for d, _ in self._modes:
            d["training"] = False
        return self.model

    def __exit__(self, *exc):
        for d, mode in self._modes:
            d["training"] = mode
        return False


class one_sample_kernels:
    """Plain CPU kernels for a one-image pass: oneDNN's set-up per call outweighs its speed there.

    Measured with two threads: LeNet-5's batch-1 forward 0.30 ms with oneDNN, 0.12 ms without
    it; VGG-11 (width 0.125) 0.38 / 0.39 ms; ResNet-18 3.2 / 3.0 ms. The switch is process-wide
    (torch has no per-thread one), so a training step on another thread meanwhile may take the
    plain kernels too: the same results, for a fraction of a millisecond.

    Passes on several threads at once (the trainer's snapshot and the side probe) share one
    switch: the first in turns it off, the last out puts back what it was. Each saving and
    restoring its own left it off for good when two overlapped (the second saved "off").
    """

    _lock = threading.Lock()
    _inside = 0
    _before = True

    def __init__(self, device: torch.device):
        self._cpu = device.type == "cpu"

    def __enter__(self):
        if self._cpu:
            cls = one_sample_kernels
            with cls._lock:
                if cls._inside == 0:
                    cls._before = torch.backends.mkldnn.enabled
                    torch.backends.mkldnn.enabled = False
                cls._inside += 1
        return self

    def __exit__(self, *exc):
        if self._cpu:
            cls = one_sample_kernels
            with cls._lock:
                cls._inside -= 1
                if cls._inside == 0:
                    torch.backends.mkldnn.enabled = cls._before
        return False


def first_conv2d(model: nn.Module) -> nn.Conv2d | None:
    return next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)


NO_CONV_CHANNELS = (1, 3)   # gray or colour: what a model without a Conv2d is tried with


def find_input_shape(model: nn.Module, sizes=CANDIDATE_SIZES,
                     hint: tuple[int, int, int] | None = None) -> tuple[int, int, int]:
    """(C, H, W) the model accepts: the first candidate whose forward runs.

    C comes from the first Conv2d, H = W from the first of ``sizes`` that runs. A model
    without a Conv2d (an MLP that flattens the image) has no C to read: ``hint`` (the open
    data's own shape) is tried first, then 1 and 3 channels at each size.
    """
    check_forward_signature(model)
    conv = first_conv2d(model)
    if conv is not None:
        c = int(conv.in_channels)
        if c <= 0:
            raise ModelError("the first Conv2d has no in_channels yet (lazy module); "
                             "give the input shape (C, H, W) explicitly")
        candidates = [(c, s, s) for s in sizes]
    else:
        hinted = [tuple(int(v) for v in hint)] if hint is not None else []
        candidates = hinted + [(c, s, s) for c in NO_CONV_CHANNELS for s in sizes if (c, s, s) not in hinted]
    last_err = None
    with eval_mode(model), torch.no_grad():
        for shape in candidates:
            try:
                out = model(_dummy_input(model, shape))
            except Exception as e:  # noqa: BLE001 - any user-model failure means "not this size"
                last_err = e
                continue
            if first_tensor(out) is not None:
                return shape
            last_err = TypeError(f"forward returned {type(out).__name__}, not a tensor")
    tried = ", ".join(f"{c}x{h}x{w}" for c, h, w in candidates[:6]) + (", ..." if len(candidates) > 6 else "")
    what = "" if conv is not None else "the model has no Conv2d layer to tell its image channels, and "
    raise ModelError(f"{what}no input size worked: tried {tried}; last error: "
                     f"{type(last_err).__name__}: {last_err}; give the input shape (C, H, W) explicitly")


# --------------------------------------------------------------------------- introspection

def _per_sample_shape(out) -> tuple[int, ...] | None:
    t = first_tensor(out)
    if t is None or t.dim() == 0:
        return None
    return tuple(int(s) for s in t.shape[1:])


def _registration_parent(name: str) -> str | None:
    return name.rsplit(".", 1)[0] if "." in name else None


def introspect(model: nn.Module, input_shape=None) -> ModelInfo:
    """Ordered layer list of ``model`` from one dummy forward (see the module docstring).

    Raises ModelError with the reason when the model cannot be fed one image tensor.
    """
    if isinstance(model, torch.jit.ScriptModule):
        raise ModelError("TorchScript models cannot be hooked, so their layers cannot be listed; "
                         "load the Python model or its state dict instead")
    check_forward_signature(model)
    if input_shape is None:
        input_shape = find_input_shape(model)
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3:
        raise ModelError(f"input shape must be (C, H, W), got {input_shape}")

    named = list(model.named_modules())
    records: dict[str, dict] = {}
    tracker = CallTracker()

    def pre_hook(name, module):
        def hook(mod, args):
            tracker.push(name, mod)
            if not name:
                return None
            rec = records.get(name)
            if rec is None:
                records[name] = {"module": mod, "calls": 1, "shape": None, "done": False}
            else:
                rec["calls"] += 1
            return None
        return hook

    def post_hook(name):
        def hook(mod, args, out):
            rec = records.get(name)
            if rec is not None and not rec["done"]:
                rec["shape"] = _per_sample_shape(out)
                rec["done"] = True
            tracker.pop(name)
            return None
        return hook

    parameter_names = {id(p): n for n, p in model.named_parameters()}

    def on_functional(spec, func, args, kwargs):
        if not tracker.records_functional() or not spec.is_layer_call(args, kwargs):
            return func(*args, **kwargs)
        name, parent = tracker.functional_name(spec.name)
        out = func(*args, **kwargs)
        if name in records:
            records[name]["calls"] += 1
            return out
        shape = _per_sample_shape(out)
        weights = called_weights(spec, args, kwargs)
        weight = parameter_names.get(id(weights.weight)) if weights is not None else None
        bias = parameter_names.get(id(weights.bias)) if weights is not None and weights.bias is not None else None
        kind, detail = describe_call(spec, args, kwargs, shape, weight)
        records[name] = {"functional": spec, "parent": parent, "calls": 1, "shape": shape, "kind": kind,
                         "detail": detail, "params": spec.params(args, kwargs),
                         "call_args": call_arguments(spec, args, kwargs), "weight": weight, "bias": bias,
                         "n_params": sum(int(p.numel()) for p in (weights.weight, weights.bias)
                                         if p is not None) if weight is not None else 0}
        return out

    handles = []
    try:
        for name, m in named:
            handles.append(m.register_forward_pre_hook(pre_hook(name, m)))
            handles.append(m.register_forward_hook(post_hook(name), always_call=True))
        with eval_mode(model), torch.no_grad(), FunctionalLayerMode(on_functional):
            try:
                out = model(_dummy_input(model, input_shape))
            except Exception as e:
                raise ModelError(f"forward failed on an input of shape (1, {', '.join(map(str, input_shape))}): "
                                 f"{type(e).__name__}: {e}") from e
    finally:
        for h in handles:
            h.remove()

    out_t = first_tensor(out)
    if out_t is None:
        raise ModelError(f"forward returned {type(out).__name__}; the visualizer needs a tensor of class scores")
    num_outputs = int(out_t[0].numel()) if out_t.dim() > 0 and out_t.shape[0] > 0 else 0

    layers = [_layer_from_record(name, rec) for name, rec in records.items()]
    # Registered but never called in this (eval) forward, e.g. auxiliary heads used only in train mode.
    for name, m in named:
        if name and name not in records:
            layers.append(_module_layer(name, m, None, calls=0))
    total = sum(p.numel() for p in model.parameters())
    return ModelInfo(layers=tuple(layers), input_shape=input_shape, total_params=int(total),
                     num_outputs=num_outputs)


def _module_layer(name: str, m: nn.Module, shape, calls: int) -> LayerInfo:
    kind = kind_of(m)
    if kind == "block":
        params = sum(p.numel() for p in m.parameters())
    else:
        params = sum(p.numel() for p in m.parameters(recurse=False))
    detail = describe(m, kind)
    if calls > 1:
        detail += f"; called {calls} times, first call shown"
    elif calls == 0:
        detail += "; not called in an eval-mode forward"
    act = activation_of_module(m) if kind == "activation" else None
    return LayerInfo(name=name, kind=kind, type_name=type(m).__name__, output_shape=shape,
                     params=int(params), functional=False, parent=_registration_parent(name),
                     detail=detail, activation=act[0] if act else None,
                     activation_params=act[1] if act else (), calls=calls)


def _layer_from_record(name: str, rec: dict) -> LayerInfo:
    spec = rec.get("functional")
    if spec is None:
        return _module_layer(name, rec["module"], rec["shape"], rec["calls"])
    params = rec["params"]
    if spec.kind == "activation":
        inner = ", ".join(f"{k}={v:g}" for k, v in params)
        detail = f"F.{spec.name}({inner}) called in forward" if inner else f"F.{spec.name} called in forward"
    else:
        detail = f"{rec['detail']}; F.{spec.name} called in forward" if rec["detail"] else \
            f"F.{spec.name} called in forward"
    if rec["calls"] > 1:
        detail += f"; called {rec['calls']} times, first call shown"
    activation = spec.name if spec.kind == "activation" else None
    return LayerInfo(name=name, kind=rec["kind"], type_name=f"F.{spec.name}", output_shape=rec["shape"],
                     params=rec["n_params"], functional=True, parent=rec["parent"], detail=detail,
                     activation=activation, activation_params=params if activation else (), calls=rec["calls"],
                     weight=rec["weight"], bias=rec["bias"], call_args=rec["call_args"])
