"""The optional ``[onnx]`` extra: imported only when an ONNX model is opened, with a clear message if absent."""
from __future__ import annotations

from ..errors import LoadError

EXTRA_HINT = 'install the optional ONNX support: pip install "cnn-visualizer[onnx]"'


def require(path, *modules: str):
    """The named modules (``"onnx"``, ``"onnxruntime"``), or LoadError naming the file and the extra."""
    import importlib

    found = []
    for name in modules:
        try:
            found.append(importlib.import_module(name))
        except ImportError as e:
            raise LoadError(path, f"opening ONNX models needs the {name} package, which is not installed",
                            EXTRA_HINT) from e
    return found[0] if len(found) == 1 else tuple(found)
