"""Saving and loading models: atomic writes, and loading that is safe by default.

Model files are untrusted. Weights-only formats load without asking; formats
that run code from the file (whole pickled models, TorchScript, ``.pt2``)
raise :class:`~visualizer.core.errors.TrustRequired` until the user confirms
that file (remembered by SHA-256 in :class:`TrustStore`). Every failure is a
:class:`~visualizer.core.errors.LoadError` naming the file, the problem and a hint.
"""
from .atomic import SaveError, atomic_write, check_writable, save_target, sweep_stale_temp
from .formats import FORMATS, ModelFileInfo, file_sha256, inspect_model_file
from .safe_load import DEFAULT_MAX_BYTES, ArchitectureRequired, load_model
from .save import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, checkpoint_dict, save_checkpoint, save_safetensors
from .trust import TrustStore, config_dir
from .user_model import load_user_model

__all__ = [
    "ArchitectureRequired", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "DEFAULT_MAX_BYTES", "FORMATS",
    "ModelFileInfo", "SaveError", "TrustStore", "atomic_write", "check_writable", "checkpoint_dict",
    "config_dir", "file_sha256", "inspect_model_file", "load_model", "load_user_model",
    "save_checkpoint", "save_safetensors", "save_target", "sweep_stale_temp",
]
