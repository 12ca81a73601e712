"""Data sets: built-in (digits, shapes, MNIST), IDX, CIFAR-10 and image folders, and preparing them for a model.

Readers return an :class:`ImageDataset` at native size (uint8, read-only) or
raise :class:`visualizer.core.errors.LoadError`; batch readers skip bad items
and list them in ``ImageDataset.skipped``. :func:`prepare` fits a data set to a
model's input once (resize, channels), splits it, and serves normalised,
optionally augmented tensors. Names are imported on first use (``core/lazy.py``):
``datasets.builtin`` is torch-free and read by the window's process.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "Augment": "..config", "BUILTIN_DATASETS": ".builtin",
    "ImageDataset": ".image_dataset", "load_dataset": ".load",
    "DataOptions": ".preparation", "PreparedData": ".preparation", "prepare": ".preparation",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
