"""Looks at the open model on request: the numbers behind one output, where it looks, its health,
what each channel looks for. One entry point for the viewer, run where the model lives.

A request names a ``kind`` and its parameters (plain data); the answer is a torch-free
record (``explain/records.py``, ``health/records.py``, ``channels/records.py``) inside a
``messages.AnalysisResult``, or the one-line reason it could not be made. The input is the
one the views show: the image of the latest capture request (a drawing, an opened file or
a dataset sample). Looking never changes the model (each analysis restores modes,
statistics and gradients; their tests check it).

Kinds and their parameters:
- ``step``: ``layer``, ``channel``, ``y``, ``x`` (for a linear layer: ``channel`` is the
  unit) → ConvStep / PoolStep / LinearStep; ``geometry``: ``layer`` → WindowGeometry;
- ``cam``: optional ``method`` ("auto", "cam", "grad-cam"), ``layer``, ``class_index`` → ClassActivationMap;
- ``health``: optional ``samples`` (>= 256) → HealthReport of a batch of the open data;
- ``top_patches``: ``layer``, optional ``split`` → TopPatches over the whole split (progress
  events, cancellable).
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from ..errors import ModelError
from ..snapshot import CaptureRequest

KINDS = ("step", "geometry", "cam", "health", "top_patches")
TITLES = {"step": "The step-by-step view", "geometry": "The step-by-step view", "cam": "The class activation map",
          "health": "The health check", "top_patches": "The top-patch search"}


def analyse(engine, kind: str, params: dict[str, Any], request: CaptureRequest, *,
            progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None):
    """The record ``kind`` asks for on ``engine``'s open model; ModelError/ValueError name what is wrong."""
    from ..training import probe_input
    bundle = engine.bundle
    if bundle is None:
        raise ModelError("Open a model first.")
    if kind not in KINDS:
        raise ValueError(f"unknown analysis {kind!r}; one of {', '.join(KINDS)}")
    if not bundle.probeable:
        raise ModelError("This model cannot be looked into here (it has no hooks).")
    if getattr(bundle, "trainable", True) is False:
        raise ModelError(f"{TITLES[kind]} needs the PyTorch model (its hooks and gradients); an ONNX model is "
                         "opened for inspection only: feature maps, filters, pooling, activations and the prediction")
    image01, _label = probe_input(request, engine.data, bundle.input_shape)
    if kind in ("step", "geometry"):
        return _step(bundle, image01, kind, params)
    if kind == "cam":
        from ..explain.cam import cam_for_bundle
        return cam_for_bundle(bundle, np.asarray(image01, np.float32), method=params.get("method", "auto"),
                              layer=params.get("layer"), class_index=params.get("class_index"))
    if engine.data is None:
        raise ModelError("Open a data set first: this looks at many of its images.")
    if kind == "health":
        from ..health.measure import health_batch, measure_health
        inspector = engine.trainer.inspector if engine.trainer is not None else engine.idle_inspector()
        config = engine.trainer.config if engine.trainer is not None else None
        x, y = health_batch(engine.data, int(params.get("samples", 256)))
        return measure_health(inspector, x, y, config=config, progress=progress,
                              cancel=(cancel.is_set if cancel is not None else None))
    from ..channels.top_patches import ImageSource, search_top_patches
    split = params.get("split") or engine.data.probe_split
    return search_top_patches(bundle.model, str(params["layer"]), ImageSource.from_split(engine.data, split),
                              input_shape=bundle.input_shape, progress=progress, cancel=cancel)


def _step(bundle, image01, kind: str, params: dict):
    from ..explain import steps
    from ..explain.capture import model_input
    x = model_input(np.asarray(image01, np.float32), bundle.mean, bundle.std)
    layer = str(params["layer"])
    if kind == "geometry":
        return steps.window_geometry(bundle.model, x, layer)
    module = dict(bundle.model.named_modules()).get(layer)
    channel, y, xx = int(params.get("channel", 0)), int(params.get("y", 0)), int(params.get("x", 0))
    import torch.nn as nn
    if isinstance(module, nn.Linear):
        return steps.explain_linear(bundle.model, x, layer, channel)
    if isinstance(module, nn.modules.conv._ConvNd):
        return steps.explain_conv(bundle.model, x, layer, channel, y, xx)
    return steps.explain_pool(bundle.model, x, layer, channel, y, xx)
