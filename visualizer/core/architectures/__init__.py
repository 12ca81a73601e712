"""The model zoo: the classic CNNs the field teaches, buildable at any input size >= 28.

Public API (docs/architecture.md): ``ARCHITECTURES``, ``ArchSpec``, ``build_model``,
``ACTIVATIONS``, ``POOLINGS``.
"""
from .common import ACTIVATIONS, MIN_INPUT_SIZE, POOLINGS
from .registry import ARCHITECTURES, ArchSpec, build_model

__all__ = ["ACTIVATIONS", "ARCHITECTURES", "ArchSpec", "MIN_INPUT_SIZE", "POOLINGS", "build_model"]
