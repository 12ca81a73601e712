"""Models the engine can look into but not train (ONNX files), beside the PyTorch ones.

An ``.onnx`` file opens through ``core/onnx`` into an ``OnnxBundle``: it has an input shape,
class names, a normalisation and a layer table (``bundle.info``) like a ModelBundle, but no
PyTorch module (``bundle.model`` raises OnnxNotTrainable). The engine then holds an
``OnnxInspector`` (onnxruntime) where it would hold an ``Inspector``, so probes, filters,
pooling, activations and the prediction work as for a PyTorch model, and it refuses what
needs a module: training, resetting or saving weights, and the analyses that hook or
differentiate the model. Nothing here imports torch or onnxruntime at import time.
"""
from __future__ import annotations

from ..errors import LoadError
from .messages import describe_error


def is_inspect_only(bundle) -> bool:
    """True for a bundle that can be looked into but not trained (``OnnxBundle.trainable`` is False)."""
    return getattr(bundle, "trainable", True) is False


def training_refusal(bundle) -> str:
    """Why ``bundle`` cannot be trained here, in one line; "" when it can."""
    if not is_inspect_only(bundle):
        return ""
    from ..onnx.loader import TRAINING_REFUSAL
    return TRAINING_REFUSAL


def open_onnx(path: str):
    """``load_onnx(path)`` with every failure a LoadError naming the file (the [onnx] extra missing too)."""
    from ..onnx import load_onnx
    try:
        return load_onnx(path)
    except LoadError:
        raise
    except Exception as exc:  # a file the loader's checks let through but could not run
        raise LoadError(path, f"could not be opened as an ONNX model ({describe_error(exc)})",
                        "nothing was changed; the model shown before is kept") from exc


def model_info(bundle):
    """The layer table: from the ONNX graph, or traced from the PyTorch module."""
    if is_inspect_only(bundle):
        return bundle.info
    from ..introspect import introspect
    return introspect(bundle.model, bundle.input_shape)


def make_inspector(bundle, info=None):
    """The Inspector that fits ``bundle`` (OnnxInspector for an ONNX bundle); None if it cannot be probed."""
    if is_inspect_only(bundle):
        from ..onnx import OnnxInspector
        return OnnxInspector(bundle)
    if not bundle.probeable:
        return None
    from ..inspector import Inspector
    return Inspector(bundle, info)


def close_bundle(bundle) -> None:
    """Let go of what a bundle holds outside Python's memory (an ONNX bundle's onnxruntime session)."""
    graph = getattr(bundle, "graph", None)
    runner = getattr(graph, "runner", None)
    if runner is not None:
        runner.close()
