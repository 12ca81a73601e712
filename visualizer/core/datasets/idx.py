"""MNIST / Fashion-MNIST IDX files (``*-images-idx3-ubyte[.gz]`` with ``*-labels-idx1-ubyte[.gz]``).

The format: two zero bytes, a type code, the number of dimensions, then one
big-endian uint32 per dimension, then the data. Parsed with ``np.frombuffer``:
10,000 MNIST images load in a few milliseconds after decompression.
"""
from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

from ..errors import LoadError
from .image_dataset import ImageDataset, check_labels, subset_indices
from .raw_bytes import read_maybe_gzipped

IDX_UBYTE = 0x08
# MNIST, Fashion-MNIST and KMNIST all have ten classes; a label file says nothing about the count,
# so a label outside 0-9 is damage, not an eleventh class. EMNIST (26-62 classes) is counted.
IDX_CLASSES = 10
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# Accept both spellings in the wild: "train-images-idx3-ubyte" and "train-images.idx3-ubyte".
IMAGES_NAME = re.compile(r"images[-.]idx3[-.]ubyte(\.gz)?$", re.IGNORECASE)


def looks_like_idx(path: Path) -> bool:
    return bool(re.search(r"idx[13][-.]ubyte(\.gz)?$", path.name, re.IGNORECASE))


def read_idx(path: Path) -> np.ndarray:
    """The array in one IDX file (unsigned bytes only; that is what image/label files hold)."""
    data = read_maybe_gzipped(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise LoadError(path, f"not an IDX file (magic number {data[:4].hex() or 'missing'})",
                        "expected an MNIST-style *-idx3-ubyte or *-idx1-ubyte file")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != IDX_UBYTE:
        raise LoadError(path, f"IDX data type 0x{dtype_code:02x} is not supported",
                        "only unsigned-byte (0x08) image and label files are read")
    if not 1 <= ndim <= 4:
        raise LoadError(path, f"IDX file claims {ndim} dimensions", "the file is damaged")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise LoadError(path, "IDX header is truncated", "download the file again")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    have = len(data) - header
    if have != expected:
        raise LoadError(path, f"IDX header promises {expected:,} bytes of data for shape {dims}, file holds {have:,}",
                        "the file is truncated or damaged; download it again")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def labels_path_for(images: Path) -> Path:
    """The labels file beside an images file: ``images``->``labels``, ``idx3``->``idx1``, with or without .gz."""
    base = re.sub(r"images([-.])idx3", r"labels\1idx1", images.name, flags=re.IGNORECASE)
    stem = base[:-3] if base.lower().endswith(".gz") else base
    for name in (base, stem + ".gz", stem):
        candidate = images.with_name(name)
        if candidate.exists():
            return candidate
    raise LoadError(images, f"no labels file beside it (looked for {stem}[.gz])",
                    "put the matching *-labels-idx1-ubyte file in the same folder")


def find_image_files(folder: Path) -> list[Path]:
    """IDX images files in a folder, training split first."""
    found = [p for p in folder.iterdir() if p.is_file() and IMAGES_NAME.search(p.name)]
    return sorted(found, key=lambda p: (not p.name.lower().startswith("train"), p.name))


def read_idx_pair(images_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 1, H, W) uint8 images and (N,) int64 labels of one images file and its labels file."""
    images = read_idx(images_path)
    if images.ndim != 3:
        raise LoadError(images_path, f"IDX images file has shape {images.shape}, expected (N, H, W)",
                        "is this a labels file? pass the *-images-idx3-ubyte file")
    labels_path = labels_path_for(images_path)
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise LoadError(labels_path, f"IDX labels file has shape {labels.shape}, expected (N,)",
                        "pass the matching *-labels-idx1-ubyte file")
    if len(labels) != len(images):
        raise LoadError(images_path, f"{len(images):,} images but {len(labels):,} labels in {labels_path.name}",
                        "the images and labels files do not belong together")
    labels = labels.astype(np.int64)
    if "emnist" not in str(images_path).lower():
        check_labels(labels_path, labels, IDX_CLASSES, "an MNIST-style IDX data set")
    return images[:, None], labels


def load_idx(path: Path, *, seed: int = 0, limit: int | None = None) -> ImageDataset:
    """An IDX images file, or a folder holding one or more IDX pairs (concatenated, train first)."""
    files = find_image_files(path) if path.is_dir() else [path]
    if not files:
        raise LoadError(path, "no *-images-idx3-ubyte[.gz] file in this folder", "choose the folder holding the IDX pair")
    parts = [read_idx_pair(f) for f in files]
    if len({p[0].shape[1:] for p in parts}) > 1:
        raise LoadError(path, "IDX files in this folder have different image sizes", "choose one images file")
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    keep = subset_indices(len(images), limit, seed)
    if keep is not None:
        images, labels = images[keep], labels[keep]
    # IDX files carry no class names; Fashion-MNIST ships under the same file names, so its folder tells.
    folder = path if path.is_dir() else path.parent
    fashion = "fashion" in f"{folder.name}/{path.name}".lower()
    emnist = "emnist" in str(path).lower()
    n_classes = int(labels.max()) + 1 if emnist and labels.size else IDX_CLASSES
    names = FASHION_CLASSES if fashion and not emnist else tuple(str(i) for i in range(n_classes))
    return ImageDataset(name=path.name, images=images, labels=labels, class_names=names, source=str(path))
