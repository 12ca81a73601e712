"""The data sets that need no download: UCI digits, generated shapes, and the MNIST test split.

The digits and MNIST files are shipped in ``resources/data`` (licences beside them), so
the built-in names work on every install.
"""
from __future__ import annotations

import gzip

import numpy as np

from ..errors import LoadError
from ..resources import resource_path
from .idx import load_idx
from .image_dataset import ImageDataset, subset_indices
from .shapes import generate_shapes

BUILTIN_DATASETS: dict[str, str] = {
    "digits": "UCI handwritten digits: 1,797 real 8x8 grayscale digits, 10 classes (bundled)",
    "shapes": "generated RGB shapes: circle, square, triangle, cross, stripes, ring at 32x32 (seeded)",
    "mnist": "MNIST test split: 10,000 real 28x28 handwritten digits, 10 classes (bundled)",
}
SHAPES_DEFAULT_COUNT = 3000
DIGIT_CLASSES = tuple(str(i) for i in range(10))
MNIST_IMAGES = "t10k-images-idx3-ubyte.gz"   # the labels file beside it is found by load_idx
MNIST_COUNT = 10_000


def load_digits(*, seed: int = 0, limit: int | None = None) -> ImageDataset:
    path = resource_path("data", "digits.csv.gz")
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as e:
        raise LoadError(path, f"bundled digits file is damaged ({e})", "reinstall from the source tree") from e
    if table.shape[1] != 65 or table[:, :64].min() < 0 or table[:, :64].max() > 16:
        raise LoadError(path, f"bundled digits table has shape {table.shape} or values outside 0..16",
                        "reinstall from the source tree")
    # 0..16 ink counts -> 0..255 so every data set shares the uint8 convention.
    images = np.round(table[:, :64] * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 1, 8, 8)
    labels = table[:, 64]
    keep = subset_indices(len(images), limit, seed)
    if keep is not None:
        images, labels = images[keep], labels[keep]
    return ImageDataset(name="digits", images=images, labels=labels, class_names=DIGIT_CLASSES, source=str(path))


def load_mnist(*, seed: int = 0, limit: int | None = None) -> ImageDataset:
    images = resource_path("data", MNIST_IMAGES)
    try:
        ds = load_idx(images, seed=seed, limit=limit)
    except LoadError as e:
        raise LoadError(e.path, f"bundled MNIST file is damaged ({e.problem})", "reinstall from the source tree") from e
    expected = MNIST_COUNT if limit is None else min(limit, MNIST_COUNT)
    if ds.native_shape != (1, 28, 28) or len(ds) != expected:
        raise LoadError(images, f"bundled MNIST holds {len(ds):,} images of {ds.native_shape}, "
                        f"expected {expected:,} of (1, 28, 28)", "reinstall from the source tree")
    return ImageDataset(name="mnist", images=ds.images, labels=ds.labels,
                        class_names=DIGIT_CLASSES, source=ds.source)


def load_builtin(name: str, *, seed: int = 0, limit: int | None = None) -> ImageDataset:
    if name == "digits":
        return load_digits(seed=seed, limit=limit)
    if name == "shapes":
        return generate_shapes(n=limit or SHAPES_DEFAULT_COUNT, seed=seed)
    if name == "mnist":
        return load_mnist(seed=seed, limit=limit)
    raise KeyError(name)
