"""Data sets: built-in (digits, shapes, MNIST), IDX, CIFAR-10 and image folders, and preparing them for a model.

Readers return an :class:`ImageDataset` at native size (uint8, read-only) or
raise :class:`visualizer.core.errors.LoadError`; batch readers skip bad items
and list them in ``ImageDataset.skipped``. :func:`prepare` fits a data set to a
model's input once (resize, channels), splits it, and serves normalised,
optionally augmented tensors.
"""
from .augment import Augment
from .builtin import BUILTIN_DATASETS, shared_mnist_dir
from .image_dataset import ImageDataset
from .load import load_dataset
from .prepare import DataOptions, PreparedData, prepare

__all__ = ["Augment", "BUILTIN_DATASETS", "DataOptions", "ImageDataset", "PreparedData",
           "load_dataset", "prepare", "shared_mnist_dir"]
