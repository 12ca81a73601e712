"""The model zoo: the classic CNNs the field teaches, buildable at any input size >= 28.

Public API (docs/architecture.md): ``ARCHITECTURES``, ``ArchSpec``, ``build_model``,
``ACTIVATIONS``, ``POOLINGS``. Names are imported on first use (``core/lazy.py``): the
catalogue (``catalog.py``) is torch-free and read by the window's process.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "ACTIVATIONS": ".catalog", "ARCHITECTURES": ".catalog", "ArchSpec": ".catalog", "MIN_INPUT_SIZE": ".catalog",
    "POOLINGS": ".catalog", "build_model": ".registry",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
