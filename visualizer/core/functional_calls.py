"""Torch calls in a model's ``forward`` that are layers, though no module stands for them.

Tutorial and CIFAR model code writes half its layers as calls: ``F.relu(self.conv1(x))``,
``F.max_pool2d(x, 2)``, ``torch.flatten(x, 1)``, ``x.view(-1, 400)``, ``out + identity``,
or a whole net as ``F.conv2d(x, self.w1, self.b1, stride=2)``. There is no module to hook,
so a ``TorchFunctionMode`` (:class:`FunctionalLayerMode`) sees each torch call during a
pass and hands the ones in :data:`FUNCTIONAL_LAYERS` to the caller: introspection lists
them, the probe captures them. One mechanism for every kind, so both always agree on
which calls are layers and what they are called.

Naming (the layer tree, snapshots and run files use these names): ``<parent>.F.<fn>`` where
``<parent>`` is the innermost running module (omitted with its dot in the model's own
``forward``) and ``<fn>`` the canonical name below; repeated calls of one function in one
call of one parent get ``_1``, ``_2``, ...: ``layer1.0.F.add``, ``F.max_pool2d_1``. Calls
made by torch's own modules (``nn.Conv2d`` calls ``F.conv2d``) are not separate layers, and
nothing outside the model's forward is (a loss computed inside the mode).

Which calls are layers: the input must be a computed tensor with a batch axis (not a
Parameter, at least 2-D), so ``self.mean.view(1, 3, 1, 1)`` in a normalising forward is
not one; an add is one only when it joins two computed tensors of one shape (a residual
connection), not a bias or a scalar.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .pool_window import PoolGeometry, pair


@dataclass(frozen=True)
class FunctionSpec:
    name: str                               # canonical: relu, conv2d, max_pool2d, linear, flatten, add, ...
    kind: str = "activation"                # model_info.LAYER_KINDS: activation, conv, pool, linear, other
    param_names: tuple[str, ...] = ()       # an activation's float parameters, positional order after the input
    param_defaults: tuple[float, ...] = ()
    inplace: bool = False                   # modifies its input (relu_): capture the input first
    arg_names: tuple[str, ...] = ()         # every argument after the input, in positional order
    arg_defaults: tuple[Any, ...] = ()
    residual: bool = False                  # an add: a layer only when it joins two computed tensors

    def params(self, args, kwargs) -> tuple[tuple[str, float], ...]:
        out = []
        for i, (pname, default) in enumerate(zip(self.param_names, self.param_defaults)):
            v = args[i + 1] if len(args) > i + 1 else kwargs.get(pname, default)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append((pname, float(v)))
        return tuple(out)

    def argument(self, args, kwargs, name: str):
        """The value the call passed for ``name`` (positionally or by keyword), else its default."""
        i = self.arg_names.index(name)
        if len(args) > i + 1:
            return args[i + 1]
        return kwargs.get(name, self.arg_defaults[i] if i < len(self.arg_defaults) else None)

    def is_layer_call(self, args, kwargs) -> bool:
        """See the module docstring: which calls of this function are steps of the model."""
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor):
            return False
        if self.kind == "activation":
            return True
        if isinstance(x, nn.Parameter) or x.dim() < 2:
            return False
        if self.residual:
            other = self.argument(args, kwargs, "other")
            return (isinstance(other, torch.Tensor) and not isinstance(other, nn.Parameter)
                    and other.shape == x.shape)
        return True


_CONV_ARGS = ("weight", "bias", "stride", "padding", "dilation", "groups"), (None, None, 1, 0, 1, 1)
_MAX_POOL_ARGS = (("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
                  (None, None, 0, 1, False, False))
_AVG_POOL_ARGS = (("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
                  (None, None, 0, False, True, None))


def _build_table() -> dict:
    T = torch.Tensor
    conv = FunctionSpec("conv2d", "conv", arg_names=_CONV_ARGS[0], arg_defaults=_CONV_ARGS[1])
    max_pool = FunctionSpec("max_pool2d", "pool", arg_names=_MAX_POOL_ARGS[0], arg_defaults=_MAX_POOL_ARGS[1])
    adaptive_max = FunctionSpec("adaptive_max_pool2d", "pool", arg_names=("output_size", "return_indices"),
                                arg_defaults=(None, False))
    specs = [
        (FunctionSpec("relu"), [F.relu, torch.relu, T.relu]),
        (FunctionSpec("relu", inplace=True), [torch.relu_, T.relu_, getattr(F, "relu_", None)]),
        (FunctionSpec("leaky_relu", param_names=("negative_slope",), param_defaults=(0.01,)), [F.leaky_relu]),
        (FunctionSpec("leaky_relu", param_names=("negative_slope",), param_defaults=(0.01,), inplace=True),
         [getattr(F, "leaky_relu_", None)]),
        (FunctionSpec("elu", param_names=("alpha",), param_defaults=(1.0,)), [F.elu]),
        (FunctionSpec("gelu"), [F.gelu]),
        (FunctionSpec("silu"), [F.silu]),
        (FunctionSpec("mish"), [F.mish]),
        (FunctionSpec("relu6"), [F.relu6]),
        (FunctionSpec("hardswish"), [F.hardswish]),
        (FunctionSpec("sigmoid"), [torch.sigmoid, T.sigmoid]),
        (FunctionSpec("sigmoid", inplace=True), [torch.sigmoid_, T.sigmoid_]),
        (FunctionSpec("tanh"), [torch.tanh, T.tanh]),
        (FunctionSpec("tanh", inplace=True), [torch.tanh_, T.tanh_]),
        (FunctionSpec("softmax"), [F.softmax, torch.softmax, T.softmax]),
        (FunctionSpec("log_softmax"), [F.log_softmax, torch.log_softmax, T.log_softmax]),
        # F.conv2d is torch.conv2d; F.max_pool2d and F.adaptive_max_pool2d are dispatchers that the
        # mode sees as themselves, or as their _with_indices form when return_indices=True is passed.
        (conv, [F.conv2d]),
        (max_pool, [F.max_pool2d, F.max_pool2d_with_indices, torch.max_pool2d]),
        (FunctionSpec("avg_pool2d", "pool", arg_names=_AVG_POOL_ARGS[0], arg_defaults=_AVG_POOL_ARGS[1]),
         [F.avg_pool2d]),
        (FunctionSpec("adaptive_avg_pool2d", "pool", arg_names=("output_size",)), [F.adaptive_avg_pool2d]),
        (adaptive_max, [F.adaptive_max_pool2d, F.adaptive_max_pool2d_with_indices]),
        (FunctionSpec("linear", "linear", arg_names=("weight", "bias"), arg_defaults=(None, None)), [F.linear]),
        (FunctionSpec("flatten", "other", arg_names=("start_dim", "end_dim"), arg_defaults=(0, -1)),
         [torch.flatten, T.flatten]),
        (FunctionSpec("view", "other"), [T.view]),
        (FunctionSpec("reshape", "other"), [torch.reshape, T.reshape]),
        # `a + b` reaches the mode as Tensor.add, `a += b` as Tensor.add_.
        (FunctionSpec("add", "other", arg_names=("other", "alpha"), arg_defaults=(None, 1), residual=True),
         [torch.add, T.add, T.__add__, T.add_, T.__iadd__]),
    ]
    table = {}
    for spec, funcs in specs:
        for f in funcs:
            if f is not None:
                table[f] = spec
    return table


# func object (as TorchFunctionMode sees it) → which layer it is
FUNCTIONAL_LAYERS: dict = _build_table()


class CallTracker:
    """The stack of running modules during a forward pass, and functional-layer naming.

    Shared by introspection and the probe so that both name functional layers
    identically. Frames are pushed by forward pre-hooks (the model's own included, as
    ``""``) and popped by forward hooks (registered with ``always_call`` so an exception
    unwinds them).
    """

    def __init__(self):
        self._stack: list[tuple[str, nn.Module, dict]] = []

    def reset(self) -> None:
        self._stack.clear()

    def push(self, name: str, module: nn.Module) -> None:
        self._stack.append((name, module, {}))

    def pop(self, name: str) -> None:
        while self._stack:
            if self._stack.pop()[0] == name:
                return

    def records_functional(self) -> bool:
        """True inside the model's own code: not inside torch's own modules (nn.ReLU calling F.relu
        is not a second layer), not outside the forward (a loss computed while the mode is on)."""
        if not self._stack:
            return False
        module = self._stack[-1][1]
        return not type(module).__module__.startswith("torch.")

    def functional_name(self, fn: str) -> tuple[str, str | None]:
        """(pseudo-layer name, parent) for the next call of ``fn`` in the innermost module."""
        parent, _, counters = self._stack[-1] if self._stack else ("", None, {})
        n = counters.get(fn, 0)
        counters[fn] = n + 1
        local = f"F.{fn}" if n == 0 else f"F.{fn}_{n}"
        return (f"{parent}.{local}" if parent else local), (parent or None)


class FunctionalLayerMode(TorchFunctionMode):
    """Routes the calls of FUNCTIONAL_LAYERS to ``on_call``; every other torch call runs as is.

    ``on_call(spec, func, args, kwargs)`` must call ``func(*args, **kwargs)`` and return
    its result. Inside ``__torch_function__`` the mode is popped, so the call does not
    recurse into the mode.
    """

    def __init__(self, on_call):
        super().__init__()
        self._on_call = on_call

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        spec = FUNCTIONAL_LAYERS.get(func)
        if spec is None:
            return func(*args, **kwargs)
        return self._on_call(spec, func, args, kwargs)


# --------------------------------------------------------------------------- what a call was

@dataclass(frozen=True)
class CalledWeights:
    """The model's own Parameters a functional conv or linear call used: what its module form
    keeps as ``.weight``/``.bias`` (so filters, gradients and health treat both forms alike)."""

    weight: nn.Parameter
    bias: nn.Parameter | None = None
    groups: int = 1

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1]) * self.groups

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])


def _plain(v):
    """A call argument as record-safe data: ints, floats, strings, bools and tuples of them."""
    if isinstance(v, (list, tuple, torch.Size)):
        return tuple(_plain(x) for x in v)
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    return str(v)


def call_arguments(spec: FunctionSpec, args, kwargs) -> tuple[tuple[str, Any], ...]:
    """The call's geometry (stride, padding, groups, kernel_size, ...), without tensors."""
    out = []
    for name in spec.arg_names:
        v = spec.argument(args, kwargs, name)
        if not isinstance(v, torch.Tensor):
            out.append((name, _plain(v)))
    return tuple(out)


def pool_geometry(spec: FunctionSpec, args, kwargs) -> PoolGeometry | None:
    """The window of a functional pooling call, read from the arguments it was given."""
    if spec.kind != "pool":
        return None
    mode = "max" if "max" in spec.name else "avg"
    if spec.name.startswith("adaptive"):
        return PoolGeometry(mode=mode, adaptive=True)
    kernel = spec.argument(args, kwargs, "kernel_size")
    stride = spec.argument(args, kwargs, "stride")
    if stride is None or stride == () or stride == []:
        stride = kernel                          # PyTorch's rule: the stride defaults to the kernel
    dilation = spec.argument(args, kwargs, "dilation") if "dilation" in spec.arg_names else 1
    return PoolGeometry(mode=mode, kernel=pair(kernel), stride=pair(stride),
                        padding=pair(spec.argument(args, kwargs, "padding")), dilation=pair(dilation),
                        ceil_mode=bool(spec.argument(args, kwargs, "ceil_mode")))


def called_weights(spec: FunctionSpec, args, kwargs) -> CalledWeights | None:
    """The weight and bias Parameters of a functional conv/linear call (None for other calls)."""
    if "weight" not in spec.arg_names:
        return None
    w = spec.argument(args, kwargs, "weight")
    b = spec.argument(args, kwargs, "bias")
    if not isinstance(w, nn.Parameter):
        return None   # a computed kernel (w * mask): no parameter to show, train or report on
    groups = spec.argument(args, kwargs, "groups") if "groups" in spec.arg_names else 1
    return CalledWeights(weight=w, bias=b if isinstance(b, nn.Parameter) else None, groups=int(groups))


def _text(v) -> str:
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    if len(v) > 1 and all(x == v[0] for x in v):
        v = (v[0],)
    return "x".join(str(x) for x in v)


def describe_call(spec: FunctionSpec, args, kwargs, out_shape, weight_name: str | None) -> tuple[str, str]:
    """(kind, detail) of a functional layer for the layer tree: "3x3 s2 p1, 3→16 (w1)", "max 2x2 s2", ..."""
    kind = spec.kind
    x = args[0]
    if kind == "activation":
        return kind, ""
    if spec.name == "conv2d":
        w = spec.argument(args, kwargs, "weight")
        groups = int(spec.argument(args, kwargs, "groups"))
        k = tuple(int(s) for s in w.shape[2:])
        pad = spec.argument(args, kwargs, "padding")
        text = f"{'x'.join(map(str, k))} s{_text(spec.argument(args, kwargs, 'stride'))} " \
               f"p{pad if isinstance(pad, str) else _text(pad)}"
        dil = spec.argument(args, kwargs, "dilation")
        if any(d != 1 for d in pair(dil)):
            text += f" d{_text(dil)}"
        if groups > 1:
            text += f" groups={groups}"
            if int(w.shape[1]) == 1:
                kind = "depthwise_conv"
        text += f", {int(w.shape[1]) * groups}→{int(w.shape[0])}"
    elif spec.kind == "pool":
        geometry = pool_geometry(spec, args, kwargs)
        if geometry.adaptive:
            text = f"adaptive {geometry.mode} → {_text(spec.argument(args, kwargs, 'output_size'))}"
        else:
            text = f"{geometry.mode} {'x'.join(map(str, geometry.kernel))} s{_text(geometry.stride)}"
            if geometry.padding != (0, 0):
                text += f" p{_text(geometry.padding)}"
    elif spec.name == "linear":
        w = spec.argument(args, kwargs, "weight")
        text = f"{int(w.shape[1])} → {int(w.shape[0])}"
    elif spec.name == "add":
        text = "x + shortcut"
    elif out_shape is not None:
        text = f"{'×'.join(str(int(d)) for d in x.shape[1:])} → {'×'.join(str(d) for d in out_shape)}"
    else:
        text = ""
    if weight_name:
        text += f" ({weight_name})"
    return kind, text
