"""``OnnxInspector``: the Inspector interface (``core/inspector.py``) for an ONNX model.

One probe is one onnxruntime run with every node's output exposed; the records are the ones
the PyTorch path makes, so the feature-map, filter, pooling, activation and prediction views
work unchanged. There is nothing to train and no gradient: ``gradient_stats`` and
``first_nonfinite_layer`` (both only asked for during training) raise OnnxNotTrainable.
Like the Inspector, it lives in the thread that owns the model.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import ModelError
from ..reduce import probabilities, sanitize
from ..snapshot import CaptureRequest, FilterCapture, ProbeSnapshot, frozen_array
from .layers import conv_weight_name
from .limits import DEFAULT_LIMITS, OnnxLimits
from .loader import OnnxBundle, OnnxNotTrainable, load_onnx
from .pooling import pool_capture
from .records import activation_stats, filter_capture, layer_capture


class OnnxInspector:
    """Probe passes, filters and the prediction of an ONNX model; see the module docstring."""

    def __init__(self, source: str | os.PathLike | OnnxBundle, *, input_shape=None,
                 limits: OnnxLimits = DEFAULT_LIMITS, threads: int | None = None):
        self.bundle = source if isinstance(source, OnnxBundle) else load_onnx(
            source, input_shape=input_shape, limits=limits, threads=threads)
        self.info = self.bundle.info
        self._graph = self.bundle.graph
        self._layers = {l.info.name: l for l in self._graph.layers}

    @property
    def weighted_layers(self) -> tuple:
        """No trainable modules: nothing to take gradient statistics of."""
        return ()

    def _input(self, image01: np.ndarray) -> np.ndarray:
        c, h, w = self.bundle.input_shape
        img = np.asarray(image01, dtype=np.float32)
        if img.ndim == 2 and c == 1:
            img = img[None]
        if img.shape != (c, h, w):
            raise ModelError(f"the probe image has shape {img.shape}; the model takes {(c, h, w)}")
        mean = np.asarray(self.bundle.mean, np.float32).reshape(-1, 1, 1)
        std = np.asarray(self.bundle.std, np.float32).reshape(-1, 1, 1)
        return (img - mean) / np.where(std == 0, 1.0, std)

    def probe(self, request: CaptureRequest, image01: np.ndarray | None = None, label: int | None = None,
              *, initial: dict | None = None, grads: bool = False) -> ProbeSnapshot:
        """One run on one image; captures what ``request`` asks for (same defaults as Inspector.probe)."""
        if image01 is None:
            image01 = request.probe_input
            label = request.probe_label if label is None else label
        if image01 is None:
            image01 = np.zeros(self.bundle.input_shape, np.float32)
        g = self._graph
        x = self._input(image01)
        outputs = dict(g.runner.run(g.feed(x)))
        outputs.setdefault(g.input_name, g.feed(x))   # the first node's input, for its pre-activation/pool view
        wanted = set(request.layers)
        every = "*" in wanted
        captures, stats = [], []
        for layer in g.layers:
            name, kind = layer.info.name, layer.info.kind
            out = outputs.get(layer.output)
            if out is None:
                continue
            sample = g.sample(out)
            pre = outputs.get(layer.input) if layer.input else None
            if every or name in wanted:
                pool = None
                if kind == "pool" and pre is not None:
                    pool = pool_capture(layer.node, g.sample(pre), tuple(sample.shape), request.max_channels,
                                        g.weights)
                captures.append(layer_capture(name, kind, sample, request.max_channels, pool))
            if kind == "activation" and pre is not None:
                stats.append(activation_stats(name, layer.info.activation or "other", layer.info.activation_params,
                                              g.sample(pre), sample))
        logits = outputs.get(g.output_name)
        probs = probabilities(g.sample(logits)) if logits is not None else frozen_array(np.zeros(0, np.float32))
        names = tuple(self.bundle.class_names)
        if len(names) != probs.size:
            names = tuple(str(i) for i in range(probs.size))
        shown, _ = sanitize(np.clip(np.asarray(image01, np.float32), 0.0, 1.0).reshape(self.bundle.input_shape))
        return ProbeSnapshot(
            input_image=shown, label=None if label is None else int(label), probabilities=probs,
            class_names=names, layers=tuple(captures), activations=tuple(stats),
            filters=self.capture_filters(request.filter_layers, initial=initial, grads=grads,
                                         max_channels=request.max_channels),
            request_id=request.request_id)

    def capture_filters(self, names, initial: dict | None = None, grads: bool = False,
                        max_channels: int = 64) -> tuple[FilterCapture, ...]:
        """Kernels of the named conv layers, from their initializers (copies). ``grads``: there are none.

        Names that are not conv layers with constant weights are skipped, as the Inspector does.
        """
        out = []
        for name in names:
            layer = self._layers.get(name)
            if layer is None or layer.info.kind not in ("conv", "depthwise_conv"):
                continue
            w = self._graph.weights.get(conv_weight_name(layer.node))
            if w is None or w.ndim != 4:
                continue
            groups = next((int(a.i) for a in layer.node.attribute if a.name == "group"), 1)
            start = None if initial is None else initial.get(name)
            out.append(filter_capture(name, w, transposed=layer.node.op_type == "ConvTranspose", groups=groups,
                                      max_channels=max_channels,
                                      initial=None if start is None else np.asarray(start)))
        return tuple(out)

    def gradient_stats(self, *args, **kwargs):
        raise OnnxNotTrainable(self.bundle.source or "")

    def first_nonfinite_layer(self, *args, **kwargs):
        raise OnnxNotTrainable(self.bundle.source or "")

    def close(self) -> None:
        self._graph.runner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
