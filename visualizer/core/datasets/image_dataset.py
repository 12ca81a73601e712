"""The in-memory dataset every reader returns: native-size uint8 images and labels."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
        for a in (images, labels):
            if a.flags.writeable:
                a.setflags(write=False)
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)
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
