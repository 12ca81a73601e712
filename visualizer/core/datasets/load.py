"""``load_dataset``: one entry point that picks the reader for a built-in name or a path."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import LoadError
from .builtin import BUILTIN_DATASETS, load_builtin
from .cifar import load_cifar, looks_like_cifar
from .folder import class_folders, load_image_folder
from .idx import find_image_files, load_idx, looks_like_idx
from .image_dataset import ImageDataset

LAYOUTS_HINT = ("use a built-in name (" + ", ".join(BUILTIN_DATASETS) + "), an IDX images file or its folder, "
                "a CIFAR-10 folder or batch, or a folder with one subfolder of images per class")


def load_dataset(spec: str | os.PathLike, *, seed: int = 0, limit: int | None = None) -> ImageDataset:
    """A built-in data set or the data set at a path; raises LoadError naming the path, problem and hint.

    ``limit`` keeps a seeded random subset of at most that many items (for
    ``shapes``: how many to generate); ``seed`` picks the subset/generation.
    """
    if limit is not None and limit < 1:
        raise LoadError(None, f"limit must be at least 1, got {limit}", "pass a positive number or no limit")
    if isinstance(spec, str) and spec in BUILTIN_DATASETS:
        return _checked(spec, lambda: load_builtin(spec, seed=seed, limit=limit))
    path = Path(spec).expanduser()
    if not path.exists():
        raise LoadError(path, "no such file or folder, and not a built-in data set name", LAYOUTS_HINT)
    reader = _reader_for(path)
    return _checked(path, lambda: reader(path, seed=seed, limit=limit))


def _reader_for(path: Path):
    if path.is_dir():
        if find_image_files(path):
            return load_idx
        if looks_like_cifar(path):
            return load_cifar
        if class_folders(path):
            return load_image_folder
        raise LoadError(path, "folder holds no data set I recognise", LAYOUTS_HINT)
    if looks_like_idx(path):
        return load_idx
    if looks_like_cifar(path):
        return load_cifar
    head = _head(path)
    if head[:2] == b"\x00\x00":
        return load_idx
    if head[:1] == b"\x80":  # pickle protocol >= 2: maybe a renamed CIFAR batch
        return load_cifar
    raise LoadError(path, "file is not a data set format I recognise", LAYOUTS_HINT)


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(4)
    except OSError as e:
        raise LoadError(path, f"cannot read file: {e.strerror or e}", "check that it is readable") from e


def _checked(where, load) -> ImageDataset:
    """Run a reader; anything that escapes it as a non-LoadError becomes one (one error type for callers)."""
    try:
        return load()
    except LoadError:
        raise
    except MemoryError as e:
        raise LoadError(where, "not enough memory to load this data set", "pass a smaller limit") from e
    except (ValueError, OSError) as e:
        raise LoadError(where, f"cannot load data set: {e}", LAYOUTS_HINT) from e
