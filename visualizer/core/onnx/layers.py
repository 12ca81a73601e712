"""An ONNX graph as the app's layer table: one LayerInfo per node, in the graph's (topological) order.

Kinds follow ``model_info.LAYER_KINDS`` so the layer tree, the filter view and the pooling view
treat an ONNX Conv like an ``nn.Conv2d``. Nodes that only compute shapes (``Shape``,
``Constant``, integer index arithmetic) are not layers: their outputs are not feature maps.
Output shapes are per sample, taken from one run of the model (exact, unlike shape inference,
which cannot resolve every exporter's dynamic reshapes).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model_info import LayerInfo, ModelInfo

CONV_OPS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv"}
POOL_OPS = {"MaxPool": "max", "AveragePool": "avg", "GlobalAveragePool": "avg", "GlobalMaxPool": "max",
            "LpPool": "lp", "GlobalLpPool": "lp", "MaxRoiPool": "max"}
# ONNX operator -> the function name ActivationStats and the views use.
ACTIVATION_OPS = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Sigmoid": "sigmoid", "Tanh": "tanh",
                  "Elu": "elu", "Selu": "selu", "Celu": "celu", "Gelu": "gelu", "Softmax": "softmax",
                  "LogSoftmax": "log_softmax", "HardSigmoid": "hardsigmoid", "HardSwish": "hardswish",
                  "PRelu": "prelu", "Softplus": "softplus", "Softsign": "softsign", "Mish": "mish",
                  "ThresholdedRelu": "other", "Clip": "hardtanh"}
NORM_OPS = {"BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
            "LRN", "LpNormalization", "MeanVarianceNormalization", "RMSNormalization"}
LINEAR_OPS = {"Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"}
DROPOUT_OPS = {"Dropout"}
# Never layers: constants and shape plumbing.
SKIPPED_OPS = {"Constant", "ConstantOfShape", "Shape", "Size"}


@dataclass(frozen=True)
class NodeLayer:
    """A graph node shown as a layer: its LayerInfo and the tensor names the inspector fetches."""

    info: LayerInfo
    output: str                 # the node's first output (what the layer shows)
    input: str | None           # its first input (pre-activation values, pooling input)
    node: object                # onnx.NodeProto


def attributes(node) -> dict:
    """A node's attributes as Python values (ints, floats, strings, lists of them)."""
    import onnx

    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
    return out


def _pair(v, default=1) -> tuple[int, int]:
    v = list(v) if isinstance(v, (list, tuple)) else ([] if v is None else [v])
    v = [int(x) for x in v] or [default]
    return (v[0], v[-1]) if len(v) >= 2 else (v[0], v[0])


def _xy(v) -> str:
    a, b = v
    return f"{a}" if a == b else f"{a}x{b}"


# Global pooling written as a reduction over H and W (how exporters write AdaptiveAvgPool2d(1)
# and Keras' GlobalAveragePooling2D).
REDUCE_POOLS = {"ReduceMean": "avg", "ReduceMax": "max"}


def reduce_axes(node, weights: dict) -> set[int] | None:
    """The axes a Reduce* node reduces (attribute before opset 18, an input since), None if unknown."""
    a = attributes(node)
    if "axes" in a:
        return {int(v) for v in a["axes"]}
    if len(node.input) > 1 and node.input[1] in weights:
        return {int(v) for v in np.asarray(weights[node.input[1]]).reshape(-1)}
    return None


def pool_mode(node, weights: dict) -> str | None:
    """"max" / "avg" / "lp" for a pooling node (a spatial Reduce* included), else None."""
    if node.op_type in POOL_OPS:
        return POOL_OPS[node.op_type]
    if node.op_type in REDUCE_POOLS and reduce_axes(node, weights) in ({2, 3}, {-2, -1}):
        return REDUCE_POOLS[node.op_type]
    return None


def conv_weight_name(node) -> str | None:
    """The input that holds a conv node's kernels (QLinearConv passes scales and zero points first)."""
    i = 3 if node.op_type == "QLinearConv" else 1
    return node.input[i] if len(node.input) > i and node.input[i] else None


def kind_of(node, weights: dict) -> str:
    op = node.op_type
    if op in CONV_OPS:
        w = weights.get(conv_weight_name(node))
        group = int(attributes(node).get("group", 1))
        if group > 1 and w is not None and w.ndim >= 3 and w.shape[1] == 1 and op != "ConvTranspose":
            return "depthwise_conv"
        return "conv"
    if pool_mode(node, weights) is not None:
        return "pool"
    if op in ACTIVATION_OPS:
        return "activation"
    if op in NORM_OPS:
        return "norm"
    if op in LINEAR_OPS:
        # a product with weights is a linear layer; one of two activations (attention) is not
        return "linear" if any(i in weights for i in node.input[:2]) else "other"
    if op in DROPOUT_OPS:
        return "dropout"
    return "other"


def activation_of(node, weights: dict) -> tuple[str, tuple[tuple[str, float], ...]]:
    """(function name, float parameters) in the vocabulary of ActivationStats."""
    op, a = node.op_type, attributes(node)
    fn = ACTIVATION_OPS.get(op, "other")
    if op == "LeakyRelu":
        return fn, (("negative_slope", float(a.get("alpha", 0.01))),)
    if op in ("Elu", "Celu"):
        return fn, (("alpha", float(a.get("alpha", 1.0))),)
    if op == "Gelu":
        return fn, (("approximate", 1.0 if a.get("approximate") == "tanh" else 0.0),)
    if op == "Clip":
        lo = _clip_bound(node, weights, 1, a.get("min"))
        hi = _clip_bound(node, weights, 2, a.get("max"))
        if lo == 0.0 and hi == 6.0:
            return "relu6", ()
        if lo == 0.0 and hi is None:
            return "relu", ()
        return "hardtanh", tuple((k, v) for k, v in (("min_val", lo), ("max_val", hi)) if v is not None)
    return fn, ()


def _clip_bound(node, weights: dict, index: int, attribute) -> float | None:
    if attribute is not None:            # opset < 11: bounds are attributes
        return float(attribute)
    if len(node.input) > index and node.input[index] in weights:
        return float(np.asarray(weights[node.input[index]]).reshape(-1)[0])
    return None


def describe(node, kind: str, weights: dict) -> str:
    """Short text for the layer tree: "5x5 s1 p0, 1→6", "max 2x2 s2", "400 → 120", ..."""
    op, a = node.op_type, attributes(node)
    if kind in ("conv", "depthwise_conv"):
        w = weights.get(conv_weight_name(node))
        ks = _pair(a.get("kernel_shape") or (list(w.shape[2:]) if w is not None else [1]))
        text = f"{ks[0]}x{ks[1]} s{_xy(_pair(a.get('strides')))} p{_xy(_pair(a.get('pads'), 0))}"
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
            text += f" {a['auto_pad'].lower()}"
        if any(d != 1 for d in _pair(a.get("dilations"))):
            text += f" d{_xy(_pair(a.get('dilations')))}"
        group = int(a.get("group", 1))
        if group > 1:
            text += f" groups={group}"
        if w is not None and w.ndim >= 3:
            cin, cout = (w.shape[0], w.shape[1] * group) if op == "ConvTranspose" else (w.shape[1] * group, w.shape[0])
            text += f", {cin}→{cout}"
        return text
    if kind == "pool":
        mode = pool_mode(node, weights)
        if op.startswith("Global") or op in REDUCE_POOLS:
            return f"{mode} global" + (f" ({op})" if op in REDUCE_POOLS else "")
        ks = _pair(a.get("kernel_shape"))
        return f"{mode} {ks[0]}x{ks[1]} s{_xy(_pair(a.get('strides')))}"
    if kind == "activation":
        fn, params = activation_of(node, weights)
        return fn + "".join(f" {k}={v:g}" for k, v in params)
    if kind == "linear":
        w = next((weights[i] for i in node.input[:2] if i in weights), None)
        if w is not None and w.ndim == 2:
            n_in, n_out = (w.shape[1], w.shape[0]) if (op == "Gemm" and a.get("transB", 0)) else w.shape
            return f"{n_in} → {n_out}"
    return op


def per_sample(shape: tuple[int, ...], batch: int) -> tuple[int, ...]:
    """Drop the batch axis when the tensor has one (the first axis, of the size that was fed)."""
    return tuple(shape[1:]) if shape and shape[0] == batch else tuple(shape)


def node_layers(graph, weights: dict, outputs: dict[str, np.ndarray], batch: int) -> tuple[NodeLayer, ...]:
    """The layers of ``graph``: every node with a floating-point first output seen in ``outputs``."""
    used: set[str] = set()
    seen_weights: set[str] = set()
    layers = []
    for i, node in enumerate(graph.node):
        if node.op_type in SKIPPED_OPS or not node.output:
            continue
        out = outputs.get(node.output[0])
        if out is None or not np.issubdtype(out.dtype, np.floating):
            continue
        name = node.name if node.name and node.name not in used else f"{node.op_type}_{i}"
        while name in used:
            name += "_"
        used.add(name)
        kind = kind_of(node, weights)
        params = 0
        for inp in node.input:
            w = weights.get(inp)
            if w is not None and inp not in seen_weights and np.issubdtype(w.dtype, np.floating):
                params += int(w.size)
                seen_weights.add(inp)
        fn, fn_params = activation_of(node, weights) if kind == "activation" else (None, ())
        op = node.op_type if not node.domain or node.domain == "ai.onnx" else f"{node.domain}.{node.op_type}"
        info = LayerInfo(name=name, kind=kind, type_name=op, output_shape=per_sample(out.shape, batch),
                         params=params, functional=False, parent=None, detail=describe(node, kind, weights),
                         activation=fn, activation_params=fn_params)
        first_input = node.input[0] if node.input and node.input[0] else None
        layers.append(NodeLayer(info=info, output=node.output[0], input=first_input, node=node))
    return tuple(layers)


def model_info(layers: tuple[NodeLayer, ...], input_shape: tuple[int, int, int], total_params: int,
               num_outputs: int) -> ModelInfo:
    return ModelInfo(layers=tuple(l.info for l in layers), input_shape=tuple(input_shape),
                     total_params=int(total_params), num_outputs=int(num_outputs))
