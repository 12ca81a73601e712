"""The in-memory dataset every reader returns: native-size uint8 images and labels."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LoadError


@dataclass(frozen=True)
class ImageDataset:
    """Images at their native size; resizing/normalising for a model is ``prepare``'s job.

    Arrays are made read-only so a dataset can be shared (GUI sample browser,
    training worker) without anyone changing it under the other's feet.
    """

    name: str
    images: np.ndarray                 # (N, C, H, W) uint8, C = 1 or 3
    labels: np.ndarray                 # (N,) int64, each in [0, len(class_names))
    class_names: tuple[str, ...]
    source: str | None = None          # file or folder it was read from; None for generated data
    skipped: tuple[str, ...] = ()      # "file: reason" for every item that could not be used
    # (N,) bool, True for the items of the source's own validation split (a folder laid out as
    # train/<class>/ and val/<class>/); None when the source has no split and prepare draws one.
    is_val: np.ndarray | None = None

    def __post_init__(self):
        images = np.ascontiguousarray(self.images)
        labels = np.ascontiguousarray(self.labels)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be (N, 1|3, H, W) uint8, got {images.dtype} {images.shape}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"{images.shape[0]} images but labels have shape {labels.shape}")
        labels = labels.astype(np.int64, copy=False)
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise ValueError(f"labels must lie in [0, {len(self.class_names)}), got [{labels.min()}, {labels.max()}]")
        is_val = None if self.is_val is None else np.ascontiguousarray(self.is_val, dtype=bool)
        if is_val is not None and is_val.shape != labels.shape:
            raise ValueError(f"{labels.shape[0]} labels but the split marks {is_val.shape}")
        for a in (images, labels, is_val):
            if a is not None and a.flags.writeable:
                a.setflags(write=False)
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "is_val", is_val)
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "skipped", tuple(self.skipped))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def native_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the stored images."""
        return tuple(int(v) for v in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.num_classes)


def subset_indices(n: int, limit: int | None, seed: int) -> np.ndarray | None:
    """Indices of a seeded random subset of ``limit`` items, in file order; None keeps all.

    Random rather than the first ``limit``: CIFAR batches and image folders are
    ordered by class, so a prefix could hold a single class.
    """
    if limit is None or limit >= n:
        return None
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


class LabelOutOfRange(LoadError):
    """A label outside the data set's classes: damaged data, never a reason to add a class."""


def check_labels(path: Path, labels: np.ndarray, num_classes: int, dataset: str) -> None:
    """Raise LabelOutOfRange naming ``path`` and the first label outside ``0..num_classes-1``.

    A reader calls it on each file's labels as stored (before any subset), so the
    index it names is the position in that file.
    """
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        i = int(bad[0])
        more = f" ({bad.size:,} such labels in all)" if bad.size > 1 else ""
        raise LabelOutOfRange(path, f"label {int(labels[i])} at index {i} is outside the {num_classes} classes of "
                        f"{dataset} (0-{num_classes - 1}){more}",
                        "the file is damaged or belongs to another data set; download it again")
