"""The dataset patches that excite each channel of a conv layer most (the Deep Visualization
Toolbox's "top 9"), searched over a data set or accumulated while training runs.

A channel's score for an image is its maximum over all positions; the patch is the
receptive field of that position. :class:`TopPatchAccumulator` keeps, per channel, only
the best k (score, image, position) triples, so memory is bounded by channels x k
whatever the data size. It is fed one batch's activations of the layer and the batch's
dataset positions, either by :func:`search_top_patches` (a batched background pass over
a split, with progress and cancel) or by the training loop from its own forward passes.
Ties are broken by the lower dataset position, so the result does not depend on batch
order or size: the same images searched or accumulated give the same answer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from ..errors import ModelError
from ..introspect import eval_mode, first_tensor
from .receptive_field import receptive_field
from .records import ChannelPatches, ReceptiveField, TopPatches

TOP_K = 9


# --------------------------------------------------------------------------- images

@dataclass(frozen=True)
class ImageSource:
    """uint8 images at the model's input size, by position, and the normalisation the model expects."""

    images: torch.Tensor             # (M, C, H, W) uint8 (a prepared data set's shared tensor)
    rows: np.ndarray                 # (N,) row of ``images`` of each position
    mean: tuple[float, ...]
    std: tuple[float, ...]
    split: str = ""

    @classmethod
    def from_split(cls, data, split: str = "train") -> ImageSource:
        """Positions are those of ``data.split(split)``: what ``data.sample(i, split)`` shows."""
        ds = data.split(split)
        return cls(ds.images, np.asarray(ds.indices, dtype=np.int64), tuple(data.mean), tuple(data.std), split)

    @classmethod
    def from_array(cls, images, mean=(0.0,), std=(1.0,), split: str = "") -> ImageSource:
        a = np.asarray(images)
        # torch wants writable memory; a data set's read-only arrays are copied once here.
        t = torch.from_numpy(a if a.flags.writeable and a.flags.c_contiguous else np.array(a, order="C"))
        if t.dtype != torch.uint8 or t.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W) uint8, got {t.dtype} {tuple(t.shape)}")
        return cls(t, np.arange(len(t), dtype=np.int64), tuple(mean), tuple(std), split)

    def __len__(self) -> int:
        return len(self.rows)

    def raw(self, positions) -> torch.Tensor:
        return self.images[torch.as_tensor(self.rows[np.asarray(positions, dtype=np.int64)])]

    def normalised(self, positions, device=None, dtype=torch.float32) -> torch.Tensor:
        x = self.raw(positions).to(device=device, dtype=dtype).div_(255.0)
        c = x.shape[1]
        mean = torch.tensor(self.mean, dtype=dtype, device=device).expand(c) if len(self.mean) == 1 else \
            torch.tensor(self.mean, dtype=dtype, device=device)
        std = torch.tensor(self.std, dtype=dtype, device=device).expand(c) if len(self.std) == 1 else \
            torch.tensor(self.std, dtype=dtype, device=device)
        return (x - mean.view(1, c, 1, 1)) / std.view(1, c, 1, 1)

    def image(self, position: int) -> np.ndarray:
        """(C, H, W) uint8 of one position."""
        return self.images[int(self.rows[int(position)])].numpy()


# --------------------------------------------------------------------------- the running top k

def channel_maxima(activations: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(scores, flat positions), each (N, C): every image's maximum per channel and where it is."""
    a = activations.detach()
    if a.dim() != 4:
        raise ValueError(f"top patches need a conv layer's (N, C, H, W) output, got shape {tuple(a.shape)}")
    scores, where = a.flatten(2).float().max(dim=2)      # the first maximum on ties
    return scores.cpu().numpy(), where.cpu().numpy().astype(np.int64)


class TopPatchAccumulator:
    """The best ``k`` images per channel of one layer, fed batch by batch; see the module docstring."""

    def __init__(self, layer: str, channels: int, k: int = TOP_K):
        self.layer = layer
        self.k = max(1, int(k))
        self.channels = int(channels)
        self.reset()

    def reset(self) -> None:
        """Forget everything (new weights; a training run may call this at each epoch)."""
        c, k = self.channels, self.k
        self.scores = np.full((c, k), -np.inf, np.float32)
        self.indices = np.full((c, k), -1, np.int64)
        self.positions = np.zeros((c, k), np.int64)     # flat index into the layer's (H, W)
        self.output_size: tuple[int, int] | None = None
        self.seen = 0

    def feed(self, activations: torch.Tensor, indices) -> None:
        """One batch: the layer's output (N, C, H, W) and the N dataset positions of its images."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if activations.shape[0] != len(idx):
            raise ValueError(f"{activations.shape[0]} activations but {len(idx)} dataset indices")
        if activations.dim() != 4 or activations.shape[1] != self.channels:
            raise ValueError(f"expected ({len(idx)}, {self.channels}, H, W) activations of {self.layer}, "
                             f"got {tuple(activations.shape)}")
        self.output_size = (int(activations.shape[2]), int(activations.shape[3]))
        # Where the maximum lies is asked only of the images that can enter some channel's top k:
        # the maxima alone cost a tenth of maxima with positions (44 vs 503 us on a LeNet C1 batch of
        # 64), and once the top k fill up almost no image of a batch qualifies. The result is the same.
        a = activations.detach()
        scores = a.float().amax(dim=(2, 3)).cpu().numpy()
        take = self._may_enter(scores)
        if not take.all():
            self.seen += int(len(idx) - np.count_nonzero(take))
            if not take.any():
                return
            rows = np.flatnonzero(take)
            a = a.index_select(0, torch.as_tensor(rows, device=a.device))
            scores, idx = scores[rows], idx[rows]
        where = a.flatten(2).float().argmax(dim=2).cpu().numpy().astype(np.int64)   # the first maximum on ties
        self.merge(scores, where, idx)

    def _may_enter(self, scores: np.ndarray) -> np.ndarray:
        """(N,) bool: images whose score reaches some channel's k-th best (any image, while a channel has room)."""
        full = (self.indices >= 0).all(axis=1)
        kth = np.where(full, self.scores[:, -1], -np.inf)
        s = np.where(np.isnan(scores), -np.inf, scores)   # as merge() ranks them
        return (s >= kth[None, :]).any(axis=1)

    def merge(self, scores: np.ndarray, where: np.ndarray, idx: np.ndarray) -> None:
        """Fold (N, C) scores and positions of images ``idx`` into the running top k."""
        n = len(idx)
        if n == 0:
            return
        s = np.concatenate([self.scores, scores.T.astype(np.float32)], axis=1)
        s = np.where(np.isnan(s), -np.inf, s)
        i = np.concatenate([self.indices, np.broadcast_to(idx, (self.channels, n))], axis=1)
        p = np.concatenate([self.positions, where.T], axis=1)
        order = np.lexsort((i, -s), axis=-1)          # best score first; ties: lower position first
        s, i, p = (np.take_along_axis(a, order, axis=1) for a in (s, i, p))
        if (self.seen and np.isin(idx, self.indices).any()) or len(np.unique(idx)) < n:
            s, i, p = self._first_of_each_image(s, i, p)
        self.scores, self.indices, self.positions = s[:, :self.k], i[:, :self.k], p[:, :self.k]
        self.seen += n

    def _first_of_each_image(self, s, i, p):
        """An image seen again (a later epoch) keeps only its best entry, so k slots hold k images."""
        keep = np.zeros_like(i, dtype=bool)
        for c in range(i.shape[0]):
            _, first = np.unique(i[c], return_index=True)
            keep[c, first] = True
        keep &= i >= 0
        out = []
        for a, fill in ((s, -np.inf), (i, -1), (p, 0)):
            rows = [a[c][keep[c]] for c in range(a.shape[0])]
            width = max(self.k, max(len(r) for r in rows))
            out.append(np.stack([np.pad(r, (0, width - len(r)), constant_values=fill) for r in rows]))
        return out

    def result(self, source: ImageSource, field: ReceptiveField, *, total: int | None = None,
               cancelled: bool = False) -> TopPatches:
        """The record: per channel, the top images with their fields' pixels cropped from ``source``."""
        wo = field.output_size[1]
        channels = []
        for c in range(self.channels):
            valid = self.indices[c] >= 0
            idx = self.indices[c][valid]
            ys, xs = np.divmod(self.positions[c][valid], wo)
            boxes = np.array([field.box(y, x) for y, x in zip(ys, xs)], np.int32).reshape(-1, 4)
            patches = np.stack([crop_patch(source.image(i), field, y, x) for i, y, x in zip(idx, ys, xs)]) \
                if len(idx) else np.zeros((0, *field.patch_shape, source.images.shape[1]), np.uint8)
            channels.append(ChannelPatches(
                channel=c, scores=_frozen(self.scores[c][valid], np.float32), indices=_frozen(idx, np.int64),
                positions=_frozen(np.stack([ys, xs], axis=1).reshape(-1, 2), np.int32), boxes=_frozen(boxes, np.int32),
                patches=_frozen(patches, np.uint8)))
        return TopPatches(layer=self.layer, split=source.split, receptive_field=field, channels=tuple(channels),
                          searched=self.seen, total=len(source) if total is None else int(total), cancelled=cancelled)


def _frozen(a, dtype) -> np.ndarray:
    out = np.array(a, dtype=dtype, copy=True, order="C")
    out.setflags(write=False)
    return out


def crop_patch(image: np.ndarray, field: ReceptiveField, y: int, x: int) -> np.ndarray:
    """(ph, pw, C) uint8: the receptive field of output (y, x) in ``image`` (C, H, W); 0 outside the image.

    The canvas follows the unclipped field, so a patch at the border keeps its maximum where
    it is in every other patch; a field larger than the image shows the whole image.
    """
    c, h, w = image.shape
    ph, pw = field.patch_shape
    y0, x0, y1, x1 = field.box(y, x, clip=False)
    top = y0 if field.size[0] <= h else 0       # canvas origin in image coordinates
    left = x0 if field.size[1] <= w else 0
    out = np.zeros((ph, pw, c), np.uint8)
    cy0, cy1 = max(y0, 0, top), min(y1, h, top + ph)
    cx0, cx1 = max(x0, 0, left), min(x1, w, left + pw)
    if cy1 > cy0 and cx1 > cx0:
        out[cy0 - top:cy1 - top, cx0 - left:cx1 - left] = np.moveaxis(image[:, cy0:cy1, cx0:cx1], 0, -1)
    return out


# --------------------------------------------------------------------------- the search

class _LayerDone(Exception):
    """Raised by the capture hook once the layer has run: the rest of the forward is not needed."""


def _is_set(cancel) -> bool:
    if cancel is None:
        return False
    return bool(cancel.is_set() if hasattr(cancel, "is_set") else cancel())


def search_top_patches(model: nn.Module, layer: str, source: ImageSource, *, k: int = TOP_K,
                       batch_size: int = 64, input_shape=None,
                       progress: Callable[[int, int], None] | None = None, cancel=None) -> TopPatches:
    """The top ``k`` patches of every channel of conv layer ``layer`` over all of ``source``.

    Batched, eval mode, no grad, the model's flags restored; memory is one batch of the
    layer's output plus channels x k numbers. ``progress(done, total)`` after each batch;
    ``cancel`` (a callable or a ``threading.Event``) is checked before each batch, and a
    cancelled search returns what it has found so far (``cancelled=True``).

    Runs in the caller's thread on ``model`` with its own temporary hook, so a background
    search can work on a copy of the model while the original trains.
    """
    try:
        module = model.get_submodule(layer)
    except AttributeError:
        raise ModelError(f"the model has no layer {layer!r}") from None
    if not isinstance(module, nn.modules.conv._ConvNd) or module.weight.dim() != 4:
        raise ModelError(f"{layer!r} is not a 2-D conv layer: top patches are found for conv channels")
    if len(source) == 0:
        raise ValueError("there are no images to search")
    shape = tuple(input_shape) if input_shape is not None else tuple(int(v) for v in source.images.shape[1:])
    field = receptive_field(model, shape, layer)
    acc = TopPatchAccumulator(layer, int(module.out_channels), k)
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    captured: list[torch.Tensor] = []

    def hook(_module, _args, out):
        captured.append(first_tensor(out).detach())
        raise _LayerDone

    handle = module.register_forward_hook(hook)
    n = len(source)
    cancelled = False
    try:
        with eval_mode(model), torch.no_grad():
            for start in range(0, n, max(1, int(batch_size))):
                if _is_set(cancel):
                    cancelled = True
                    break
                positions = np.arange(start, min(n, start + batch_size))
                captured.clear()
                try:
                    model(source.normalised(positions, device, dtype))
                except _LayerDone:
                    pass
                if not captured:
                    raise ModelError(f"layer {layer!r} did not run in the model's forward")
                acc.feed(captured[0], positions)
                captured.clear()
                if progress is not None:
                    progress(int(positions[-1]) + 1, n)
    finally:
        handle.remove()
    return acc.result(source, field, total=n, cancelled=cancelled)
