"""Models from other frameworks, as ONNX: opened for inspection through onnxruntime (the ``[onnx]`` extra).

Keras/TensorFlow (tf2onnx), Caffe, MXNet and PyTorch models reach the app as ``.onnx`` files.
``load_onnx(path)`` checks the file as data (size, node count, weight bytes, operator domains,
external-data locations; see ``limits.OnnxLimits``) and returns an ``OnnxBundle``; an
``OnnxInspector`` gives it the Inspector's interface: ``.info`` (a ModelInfo), ``.probe(request,
image01, label) -> ProbeSnapshot``, ``.capture_filters(names)``, ``.close()``. Training is not
offered: ``bundle.trainable`` is False and anything that would train raises OnnxNotTrainable.

Nothing here imports torch; onnx and onnxruntime are imported when a model is opened, and their
absence is a LoadError that names the extra.
"""
from __future__ import annotations

from .deps import EXTRA_HINT
from .inspector import OnnxInspector
from .limits import DEFAULT_LIMITS, STANDARD_DOMAINS, OnnxLimits
from .loader import TRAINING_REFUSAL, OnnxBundle, OnnxNotTrainable, load_onnx

ONNX_SUFFIXES = (".onnx",)


def is_onnx_path(path) -> bool:
    """Whether ``path`` names an ONNX file (by its suffix: protobuf has no magic number to sniff)."""
    import os

    return os.fspath(path).lower().endswith(ONNX_SUFFIXES)


__all__ = ["DEFAULT_LIMITS", "EXTRA_HINT", "ONNX_SUFFIXES", "STANDARD_DOMAINS", "TRAINING_REFUSAL", "OnnxBundle",
           "OnnxInspector", "OnnxLimits", "OnnxNotTrainable", "is_onnx_path", "load_onnx"]
