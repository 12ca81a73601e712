"""Saving and loading models: atomic writes, and loading that is safe by default.

Model files are untrusted. Weights-only formats load without asking; formats
that run code from the file (whole pickled models, TorchScript, ``.pt2``)
raise :class:`~visualizer.core.errors.TrustRequired` until the user confirms
that file (remembered by SHA-256 in :class:`TrustStore`). Every failure is a
:class:`~visualizer.core.errors.LoadError` naming the file, the problem and a hint.

Names are imported on first use (``core/lazy.py``): ``atomic``, ``formats`` and
``trust`` are torch-free and used by the window's process.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "SaveError": ".atomic", "atomic_write": ".atomic", "check_writable": ".atomic", "save_target": ".atomic",
    "sweep_stale_temp": ".atomic",
    "FORMATS": ".formats", "ModelFileInfo": ".formats", "file_sha256": ".formats", "inspect_model_file": ".formats",
    "DEFAULT_MAX_BYTES": ".safe_load", "ArchitectureRequired": ".safe_load", "load_model": ".safe_load",
    "CHECKPOINT_FORMAT": ".save", "CHECKPOINT_VERSION": ".save", "checkpoint_dict": ".save",
    "save_checkpoint": ".save", "save_safetensors": ".save",
    "TrustStore": ".trust", "config_dir": ".trust",
    "load_user_model": ".user_model",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
