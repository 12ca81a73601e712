"""The data set an engine holds, as it was asked for, and what the viewer is told of it (no Qt)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import Augment
from ..snapshot import frozen_array
from .messages import DataInfo

GALLERY_BYTES = 8 << 20    # dataset thumbnails sent to the viewer once per dataset
GALLERY_MAX = 512
VAL_FRACTION = 0.1         # held out for validation unless the caller says otherwise


@dataclass(frozen=True)
class DataSource:
    """A data set read from disk and how it was asked for: committed together with what was prepared from it."""

    dataset: Any                # ImageDataset
    spec: str
    limit: int | None
    augment: Augment | None
    seed: int = 0
    val_fraction: float = VAL_FRACTION


def data_info(data, source: DataSource) -> DataInfo:
    """What the viewer shows of the prepared data: names, sizes, labels and a gallery of thumbnails."""
    name = data.probe_split
    # Labels straight from the split: indexing it would normalise (and augment) every image.
    labels = np.asarray(data.labels(name), dtype=np.int64)
    n = len(labels)
    c, h, w = data.input_shape
    g = min(n, GALLERY_MAX, max(1, GALLERY_BYTES // max(1, c * h * w)))
    images = np.zeros((g, c, h, w), np.uint8)
    for i in range(g):
        img, _lab = data.sample(i, split=name)
        images[i] = np.clip(np.asarray(img) * 255 + 0.5, 0, 255).astype(np.uint8)
    return DataInfo(name=source.dataset.name, spec=str(source.spec), class_names=tuple(data.class_names),
                    input_shape=tuple(data.input_shape), n_train=len(data.train), n_val=n,
                    labels=frozen_array(labels, np.int64), gallery=frozen_array(images, np.uint8),
                    augment=tuple(vars(source.augment).items()) if source.augment is not None else (),
                    native_shape=tuple(int(v) for v in source.dataset.native_shape))
