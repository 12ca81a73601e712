"""Fitting a data set to a model: resize and channels once, split, normalise, augment.

Resizing happens once for the whole data set, in chunks, and the result is
kept as uint8: per item only a cast, an optional warp and a normalisation
remain, so the DataLoader is never the bottleneck and CIFAR-sized sets stay
at a quarter of the memory of float32. ``__getitems__`` lets a DataLoader
fetch (and augment) a whole batch in one call.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from .. import image_fit as img
from ..config import Augment
from .augment import augment_batch
from .image_dataset import ImageDataset

CHUNK = 2048  # images converted at a time: bounds the float32 temporaries


@dataclass(frozen=True)
class DataOptions:
    input_shape: tuple[int, int, int]     # (C, H, W) of the model
    mean: tuple[float, ...] | None = None  # None: per channel, from the training split
    std: tuple[float, ...] | None = None
    val_fraction: float = 0.1
    augment: Augment = Augment()
    seed: int = 0                          # split and augmentation


class SplitDataset(Dataset):
    """One split: yields (normalised float32 (C, H, W) tensor, int label); augmented if ``augment`` is active.

    Augmentation draws from a generator seeded by ``seed`` (and, in a DataLoader
    worker, by the worker's seed, which comes from the DataLoader's generator),
    so a run is repeatable given both seeds.
    """

    def __init__(self, images: torch.Tensor, labels: np.ndarray, indices: np.ndarray,
                 mean: tuple[float, ...], std: tuple[float, ...], augment: Augment | None = None, seed: int = 0):
        self.images = images                 # (N, C, H, W) uint8, shared by both splits
        self.indices = indices               # rows of ``images`` in this split
        self.labels = labels[indices]        # (len,) int64, this split's labels in order
        self.augment = augment if augment is not None and augment.active else None
        self.seed = seed
        c = images.shape[1]
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, c, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, c, 1, 1)
        self._gen: torch.Generator | None = None
        self._gen_owner = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.__getitems__([i])[0]

    def __getitems__(self, idxs):
        rows = torch.as_tensor(self.indices[np.asarray(idxs, dtype=np.int64)])
        x = self.images[rows].float().div_(255.0)
        if self.augment is not None:
            x = augment_batch(x, self.augment, self._generator())
        x = (x - self._mean) / self._std
        return list(zip(x.unbind(0), (int(v) for v in self.labels[np.asarray(idxs, dtype=np.int64)])))

    def generator(self) -> torch.Generator:
        """The augmentation RNG in use (this process or worker); its state can be saved to resume a run."""
        return self._generator()

    def _generator(self) -> torch.Generator:
        info = get_worker_info()
        owner = None if info is None else (info.id, info.seed)
        if self._gen is None or owner != self._gen_owner:
            seed = self.seed if info is None else hash((self.seed, info.seed)) & 0x7FFF_FFFF_FFFF_FFFF
            self._gen = torch.Generator().manual_seed(seed)
            self._gen_owner = owner
        return self._gen

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_gen"] = None  # each worker process seeds its own
        return state


@dataclass(frozen=True)
class PreparedData:
    train: SplitDataset
    val: SplitDataset
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    name: str = ""
    native_shape: tuple[int, int, int] = (0, 0, 0)
    notes: tuple[str, ...] = ()          # what was done to fit the model: resize, channel conversion
    skipped: tuple[str, ...] = field(default=())  # from the source ImageDataset

    def split(self, split: str) -> SplitDataset:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        return self.train if split == "train" else self.val

    @property
    def probe_split(self) -> str:
        """The split the views show samples of: validation when it has any, else training."""
        return "val" if self.val is not None and len(self.val) else "train"

    def probe_sample(self, index: int) -> tuple[np.ndarray, int] | None:
        """The ``index``-th sample (wrapping around) of the probe split; None when it is empty."""
        n = len(self.split(self.probe_split))
        return self.sample(index % n, split=self.probe_split) if n else None

    def sample(self, i: int, split: str = "val") -> tuple[np.ndarray, int]:
        """Item ``i`` of a split, un-normalised and un-augmented: ((C, H, W) float32 in [0, 1], label)."""
        ds = self.split(split)
        row = int(ds.indices[i])
        return ds.images[row].numpy().astype(np.float32) / 255.0, int(ds.labels[i])

    def labels(self, split: str = "val") -> np.ndarray:
        return self.split(split).labels

    def normalise(self, image01: np.ndarray) -> np.ndarray:
        return img.normalise(image01, self.mean, self.std)


def fit_images(images: np.ndarray, input_shape) -> tuple[torch.Tensor, tuple[str, ...]]:
    """(N, C, H, W) uint8 -> (N, C', H', W') uint8 tensor at the model's input, with notes of what changed."""
    c, h, w = (int(v) for v in input_shape)
    n, c0, h0, w0 = images.shape
    notes = tuple(x for x in (img.channel_note(c0, c), img.resize_note((h0, w0), (h, w))) if x)
    if (c0, h0, w0) == (c, h, w):
        return torch.from_numpy(np.array(images)), notes  # a writable copy: torch refuses read-only memory
    out = torch.empty((n, c, h, w), dtype=torch.uint8)
    for s in range(0, n, CHUNK):
        x = torch.from_numpy(np.array(images[s:s + CHUNK])).float().div_(255.0)
        x = img.resize(img.convert_channels(x, c), (h, w))
        out[s:s + CHUNK] = x.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return out, notes


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split keeping each class's share in both parts; every class of 2+ items gets a val item."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        n_val = int(round(len(idx) * val_fraction))
        if val_fraction > 0 and len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.empty(0, dtype=np.int64)

    return cat(train), cat(val)


def channel_stats(images: torch.Tensor, indices: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of images[indices] scaled to [0, 1] (float64 sums, chunked)."""
    c = images.shape[1]
    total, sq, count = np.zeros(c), np.zeros(c), 0
    for s in range(0, len(indices), CHUNK):
        x = images[torch.as_tensor(indices[s:s + CHUNK])].to(torch.float64).div_(255.0)
        total += x.sum(dim=(0, 2, 3)).numpy()
        sq += x.square().sum(dim=(0, 2, 3)).numpy()
        count += x.shape[0] * x.shape[2] * x.shape[3]
    if count == 0:
        return (0.0,) * c, (1.0,) * c
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean ** 2, 0.0))
    std = np.where(std < 1e-6, 1.0, std)  # a constant channel: leave it unscaled instead of dividing by 0
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _per_channel(values, c: int, what: str) -> tuple[float, ...]:
    v = tuple(float(x) for x in values)
    if len(v) == 1:
        return v * c
    if len(v) != c:
        raise ValueError(f"{what} has {len(v)} values for {c} input channels")
    return v


def prepare(ds: ImageDataset, options: DataOptions) -> PreparedData:
    """Fit ``ds`` to ``options.input_shape`` once, split it, and wrap both splits as torch Datasets."""
    shape = tuple(int(v) for v in options.input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W), got {options.input_shape}")
    if len(ds) == 0:
        raise ValueError(f"data set {ds.name!r} is empty")
    images, notes = fit_images(ds.images, shape)
    if ds.is_val is not None:   # the source's own split wins over a drawn one
        train_idx, val_idx = np.flatnonzero(~ds.is_val), np.flatnonzero(ds.is_val)
        notes += (f"the folder's own split: {len(train_idx):,} training and {len(val_idx):,} validation "
                  "images (the validation fraction is not used)",)
    else:
        train_idx, val_idx = stratified_split(ds.labels, options.val_fraction, options.seed)
    mean, std = channel_stats(images, train_idx)
    c = shape[0]
    if options.mean is not None:
        mean = _per_channel(options.mean, c, "mean")
    if options.std is not None:
        std = _per_channel(options.std, c, "std")
        if any(s == 0 for s in std):
            raise ValueError("std must not be 0")
    return PreparedData(
        train=SplitDataset(images, ds.labels, train_idx, mean, std, options.augment, options.seed),
        val=SplitDataset(images, ds.labels, val_idx, mean, std, None, options.seed),
        input_shape=shape, mean=mean, std=std, class_names=ds.class_names, name=ds.name,
        native_shape=ds.native_shape, notes=notes, skipped=ds.skipped)
