"""Writing models: our self-describing checkpoint and safetensors, both atomically.

The checkpoint is a dict of tensors and plain types only, so that it loads
with ``torch.load(weights_only=True)`` and loading it never runs code.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..model_bundle import ModelBundle
from .atomic import atomic_write
from .plain import to_plain_meta, to_weights_only

CHECKPOINT_FORMAT = "cnn-visualizer-checkpoint"
CHECKPOINT_VERSION = 1
SAFETENSORS_FORMAT = "cnn-visualizer"
# Keys of bundle.meta that describe this load, not the model: never written back.
TRANSIENT_META = ("training_state", "trusted_load", "sha256", "saved_with")


def _state_dict_cpu(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # clone: the saved object must not alias live weights a training thread may be updating
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def checkpoint_dict(bundle: ModelBundle, training_state: dict | None = None) -> dict:
    """The exact object :func:`save_checkpoint` writes."""
    meta = {k: v for k, v in bundle.meta.items() if k not in TRANSIENT_META}
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": bundle.arch,
        "arch_options": to_weights_only(to_plain_meta(dict(bundle.arch_options)), "arch_options"),
        "state_dict": _state_dict_cpu(bundle.model),
        "class_names": [str(c) for c in bundle.class_names],
        "input_shape": [int(x) for x in bundle.input_shape],
        "mean": [float(x) for x in bundle.mean],
        "std": [float(x) for x in bundle.std],
        "meta": to_plain_meta(meta),
        "training": None if training_state is None else to_weights_only(training_state, "training"),
    }


def save_checkpoint(path: str | os.PathLike, bundle: ModelBundle, training_state: dict | None = None) -> None:
    """Write ``bundle`` (and optionally the trainer's resume state) atomically to ``path``.

    ``training_state`` is opaque here: optimizer/scheduler state dicts, step,
    epoch, RNG states; numpy values are converted. What a save may replace (symlinks
    followed, only regular files) is :func:`~.atomic.atomic_write`'s rule. Raises
    SaveError (a LoadError) on OS failures or a refused destination; the previous
    file is then unchanged.
    """
    dest = Path(path)
    obj = checkpoint_dict(bundle, training_state)  # built first: a TypeError must not touch the disk
    atomic_write(dest, lambda f: torch.save(obj, f))


def safetensors_metadata(bundle: ModelBundle) -> dict[str, str]:
    meta = {k: v for k, v in bundle.meta.items() if k not in TRANSIENT_META}
    return {
        "format": SAFETENSORS_FORMAT,
        "arch": bundle.arch or "",
        "arch_options": json.dumps(to_plain_meta(dict(bundle.arch_options))),
        "class_names": json.dumps([str(c) for c in bundle.class_names]),
        "input_shape": json.dumps([int(x) for x in bundle.input_shape]),
        "mean": json.dumps([float(x) for x in bundle.mean]),
        "std": json.dumps([float(x) for x in bundle.std]),
        "meta": json.dumps(to_plain_meta(meta)),
    }


def save_safetensors(path: str | os.PathLike, bundle: ModelBundle) -> None:
    """Write the weights as safetensors (atomically), with the metadata needed to rebuild the model."""
    from safetensors.torch import save as st_save

    # contiguous copies also break tied/shared storages, which safetensors refuses
    tensors = {k: v.contiguous() for k, v in _state_dict_cpu(bundle.model).items()}
    data = st_save(tensors, metadata=safetensors_metadata(bundle))
    dest = Path(path)
    atomic_write(dest, lambda f: f.write(data))
