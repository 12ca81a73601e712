"""``load_onnx``: an ONNX file to a bundle the app's engine opens like a checkpoint (inspection only).

The bundle carries what every view needs (input shape, class names, normalisation, the layer
table) and the prepared graph the OnnxInspector runs. It has no PyTorch module: an ONNX graph
cannot be trained here, so ``bundle.model`` (what the trainer reaches for first) raises
OnnxNotTrainable with a message saying so, and ``bundle.trainable`` is False for the app to grey
out training beforehand.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LoadError, ModelError
from ..input_format import SET_INPUT_FORMAT
from ..model_info import ModelInfo
from .layers import NodeLayer, model_info, node_layers, per_sample
from .limits import DEFAULT_LIMITS, OnnxLimits
from .read import read_model
from .runner import GraphRunner, input_dtype

TRAINING_REFUSAL = ("ONNX models are opened for inspection only: training an ONNX model is not offered "
                    "(train the original model in its own framework, or open PyTorch weights here to train)")
# Tried in order when the file leaves the image size open; ImageNet's first for colour input.
_COLOUR_SIZES = (224, 32, 64, 28)
_GREY_SIZES = (28, 32, 64, 224)


class OnnxNotTrainable(ModelError):
    """Something asked to train, or take gradients of, an ONNX model."""

    def __init__(self, what: str = ""):
        super().__init__((f"{what}: " if what else "") + TRAINING_REFUSAL)


@dataclass
class OnnxGraph:
    """The checked graph, its weights as numpy arrays, the layers and the session that runs it."""

    proto: Any
    path: Path
    layers: tuple[NodeLayer, ...]
    weights: dict[str, np.ndarray]
    runner: GraphRunner
    input_name: str
    channels_last: bool          # the file's input is (N, H, W, C) (Keras via tf2onnx)
    batch: int                   # the batch size the file fixes (1 when it is open)
    dtype: type
    output_name: str

    def feed(self, x_chw: np.ndarray) -> np.ndarray:
        """A normalised (C, H, W) sample as the file's input tensor."""
        x = np.transpose(x_chw, (1, 2, 0)) if self.channels_last else x_chw
        return np.ascontiguousarray(np.repeat(x[None], self.batch, axis=0), dtype=self.dtype)

    def sample(self, a: np.ndarray) -> np.ndarray:
        """The probe sample of a batched tensor (tensors without the batch axis pass unchanged)."""
        return a[0] if a.ndim >= 1 and a.shape[0] == self.batch else a


@dataclass
class OnnxBundle:
    """Like ModelBundle, for a model that can be looked at but not trained."""

    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    info: ModelInfo
    graph: OnnxGraph = field(repr=False)
    arch: str = "onnx"
    arch_options: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    probeable: bool = True
    trainable: bool = False
    format: str = "onnx"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def model(self):
        raise OnnxNotTrainable(self.source or "")


def _weights(proto) -> dict[str, np.ndarray]:
    """Initializers and Constant node values by name (what Conv/Gemm inputs and Clip bounds refer to)."""
    from onnx import helper, numpy_helper

    out = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(a.t)
                elif a.name in ("value_float", "value_floats", "value_int", "value_ints"):
                    out[node.output[0]] = np.asarray(helper.get_attribute_value(a))
    return out


def _image_input(proto, path: Path):
    """(input ValueInfoProto, static dims or None each) of the one image input; LoadError otherwise."""
    inits = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise LoadError(path, f"the model takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)})",
                        "only image models with one (N, C, H, W) or (N, H, W, C) input can be inspected")
    vi = inputs[0]
    if not vi.type.HasField("tensor_type") or input_dtype(vi) is None:
        raise LoadError(path, f"the input {vi.name!r} is not a floating-point tensor",
                        "only models that take an image as float values can be inspected")
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in vi.type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise LoadError(path, f"the input {vi.name!r} has {len(dims)} dimensions, not 4",
                        "only image models with one (N, C, H, W) or (N, H, W, C) input can be inspected")
    return vi, dims


def _layout(dims, path: Path) -> tuple[bool, int | None, int | None, int | None]:
    """(channels_last, C, H, W) from the input's static dims; C is required."""
    _, a, b, c = dims
    if a in (1, 2, 3, 4) or (a is not None and c not in (1, 3, 4)):
        return False, a, b, c
    if c in (1, 3, 4):
        return True, c, a, b
    raise LoadError(path, "the model's input does not say how many colour channels it takes",
                    "export it with a fixed channel dimension")


def _sizes(channels: int, h: int | None, w: int | None, wanted) -> list[tuple[int, int, int]]:
    if wanted is not None:
        return [tuple(int(v) for v in wanted)]
    if h is not None and w is not None:
        return [(channels, h, w)]
    sizes = _COLOUR_SIZES if channels == 3 else _GREY_SIZES
    return [(channels, h or s, w or s) for s in sizes]


def load_onnx(path: str | os.PathLike, *, input_shape: tuple[int, int, int] | None = None,
              limits: OnnxLimits = DEFAULT_LIMITS, threads: int | None = None) -> OnnxBundle:
    """Open an ONNX model for inspection, or raise LoadError naming the file, the problem and what to do.

    ``input_shape`` (C, H, W) is needed only when the file leaves the image size open and the
    sizes tried (224/32/64/28 for colour, 28/32/64/224 otherwise) are wrong for it.
    """
    p = Path(path)
    read = read_model(p, limits)
    proto = read.proto
    vi, dims = _image_input(proto, p)
    channels_last, c, h, w = _layout(dims, p)
    if input_shape is not None:
        given = tuple(int(v) for v in input_shape)
        if len(given) != 3 or any(v <= 0 for v in given) or any(
                fixed is not None and fixed != v for fixed, v in zip((c, h, w), given)):
            raise LoadError(p, f"the input shape {given} does not fit the model's input {(c, h, w)}",
                            "give (C, H, W) matching the file's fixed dimensions")
    weights = _weights(proto)
    names = [o for node in proto.graph.node for o in node.output if o and o not in weights]
    runner = GraphRunner(proto, p, vi.name, names, limits, threads)
    graph = OnnxGraph(proto=proto, path=p, layers=(), weights=weights, runner=runner, input_name=vi.name,
                      channels_last=channels_last, batch=dims[0] or 1, dtype=input_dtype(vi),
                      output_name=proto.graph.output[0].name)
    shape, outputs, failures = None, None, []
    for candidate in _sizes(c, h, w, input_shape):
        try:
            outputs = runner.run(graph.feed(np.zeros(candidate, np.float32)))
            shape = candidate
            break
        except ModelError as e:
            failures.append(str(e))
    if outputs is None:
        runner.close()
        raise LoadError(p, f"the model does not run on a blank image ({failures[-1]})",
                        "give the input shape (C, H, W) it was exported for")
    captured = sum(int(a.nbytes) for a in outputs.values())
    if captured > limits.max_capture_bytes:
        runner.close()
        raise LoadError(p, f"one pass produces {captured:,} bytes of layer outputs, over the limit of "
                        f"{limits.max_capture_bytes:,}", "raise the ONNX capture limit, or inspect a smaller input")
    # Small integer tensors the graph computes (reduction axes, Clip bounds built from constants)
    # are fixed for a fixed input size: known values for telling kinds, like initializers.
    for name, a in outputs.items():
        if name not in weights and not np.issubdtype(a.dtype, np.floating) and a.size <= 16:
            weights[name] = a
    graph.layers = node_layers(proto.graph, weights, outputs, graph.batch)
    logits = outputs.get(graph.output_name)
    k = int(np.prod(per_sample(logits.shape, graph.batch))) if logits is not None else 0
    total = sum(int(a.size) for n, a in weights.items() if np.issubdtype(a.dtype, np.floating)
                and n in {t.name for t in proto.graph.initializer})
    info = model_info(graph.layers, shape, total, k)
    return OnnxBundle(input_shape=shape, class_names=tuple(str(i) for i in range(k)),
                      mean=(0.0,) * shape[0], std=(1.0,) * shape[0], info=info, graph=graph, source=str(p),
                      meta=_meta(proto, read), warnings=_notes(proto, read, shape, (h, w), input_shape,
                                                               channels_last, k))


def _meta(proto, read) -> dict[str, Any]:
    meta = {"format": "onnx", "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
            "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0),
            "ir_version": int(proto.ir_version), "nodes": read.nodes, "weight_bytes": read.initializer_bytes}
    if read.external_files:
        meta["external_data"] = ", ".join(read.external_files)
    return meta


def _notes(proto, read, shape, fixed_hw, wanted, channels_last, k) -> tuple[str, ...]:
    producer = f"{proto.producer_name} {proto.producer_version}".strip() or "an unnamed exporter"
    notes = [f"an ONNX model from {producer}, run by onnxruntime: opened for inspection only "
             "(training is not offered for ONNX models)"]
    guessed = []
    if wanted is None and None in fixed_hw:
        guessed.append(f"the file leaves the image size open: using {shape[1]}x{shape[2]}, set the right one")
    guessed.append(f"class names not in the file: named 0..{max(k - 1, 0)}")
    guessed.append("normalisation not in the file: assuming mean 0, std 1")
    notes.append("Guessed what the file does not record: " + "; ".join(guessed) + ". " + SET_INPUT_FORMAT)
    if channels_last:
        notes.append("the model takes channels-last (N, H, W, C) images: they are transposed before each run; "
                     "inner tensors are shown in the layout the graph computes them")
    if read.external_files:
        notes.append(f"weights read from {', '.join(read.external_files)} beside the model")
    return tuple(notes)
