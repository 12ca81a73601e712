"""Image folders: one subfolder per class, any image format Pillow reads.

Two layouts, nothing deeper (a folder inside a class folder is refused, with
the layout expected, rather than silently merged into the class)::

    root/<class>/<image>                          the split is drawn later (prepare)
    root/train/<class>/<image> + root/val/<class>/<image>   the folder's own split

``val`` may also be spelt ``valid``, ``validation`` or ``test``. A ``train`` and
a ``val`` folder that hold images directly, not class folders, are two classes.

Each file goes through :func:`visualizer.core.images.load_image`, so every
mode is normalised the same way as an image the user opens. Bad files are
skipped and reported in ``ImageDataset.skipped``; the folder fails only when
fewer than two classes keep at least one image.

All images are stored at one size: the most common size among them, shrunk
to fit ``MAX_SIDE`` so that a folder of photos does not hold gigabytes (the
model's own input size is applied later by ``prepare``).
"""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import LoadError
from ..image_fit import convert_channels, resize
from ..images import MAX_PIXELS, load_image
from .image_dataset import ImageDataset, subset_indices

MAX_SIDE = 224
IGNORED_NAMES = {"thumbs.db", "desktop.ini"}
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


TRAIN_NAMES = ("train",)
VAL_NAMES = ("val", "valid", "validation", "test")
LAYOUT = ("root/<class>/<images>, or root/train/<class>/<images> with root/val/<class>/<images>")


def class_folders(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _files(folder: Path, root: Path) -> list[Path]:
    """The images of one class folder; a folder inside it is an error (see the module docstring)."""
    files = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name.lower() in IGNORED_NAMES:
            continue
        if p.is_dir():
            raise LoadError(root, f"{p.relative_to(root)}/ is a folder inside a class folder: nested deeper "
                            "than a data set folder may be", f"lay the images out as {LAYOUT}")
        if p.is_file():
            files.append(p)
    return files


def split_folders(root: Path) -> tuple[Path, Path] | None:
    """(train, val) when ``root`` is laid out as train/<class>/ and val/<class>/, else None."""
    subs = {p.name.lower(): p for p in class_folders(root)}
    train = next((subs[n] for n in TRAIN_NAMES if n in subs), None)
    val = next((subs[n] for n in VAL_NAMES if n in subs), None)
    if train is None or val is None or not (class_folders(train) or class_folders(val)):
        return None   # no split names, or they hold images directly: they are classes
    others = sorted(set(subs.values()) - {train, val})
    if others:
        raise LoadError(root, f"holds the split folders {train.name}/ and {val.name}/ and also "
                        f"{', '.join(p.name + '/' for p in others)}", f"lay the images out as {LAYOUT}")
    return train, val


def _items(root: Path) -> tuple[list[str], list[tuple[Path, int, bool]], bool]:
    """Class names, (file, class index, is validation) and whether the folder has its own split."""
    split = split_folders(root)
    parts = [(root, False)] if split is None else [(split[0], False), (split[1], True)]
    for part, _ in parts:
        loose = [p.name for p in part.iterdir() if p.is_file() and not p.name.startswith(".")
                 and p.name.lower() not in IGNORED_NAMES]
        if split is not None and loose:
            raise LoadError(root, f"{part.name}/ holds files ({loose[0]}, ...) beside its class folders",
                            f"lay the images out as {LAYOUT}")
    names = sorted({c.name for part, _ in parts for c in class_folders(part)})
    index = {n: i for i, n in enumerate(names)}
    items = [(f, index[c.name], is_val) for part, is_val in parts for c in class_folders(part)
             for f in _files(c, root)]
    return names, items, split is not None


def _target_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    h, w = Counter(sizes).most_common(1)[0][0]
    scale = min(1.0, MAX_SIDE / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def load_image_folder(root: Path, *, seed: int = 0, limit: int | None = None) -> ImageDataset:
    if not root.is_dir():
        raise LoadError(root, "not a folder", "choose a folder with one subfolder per class")
    if not class_folders(root):
        raise LoadError(root, "folder has no class subfolders",
                        "put the images of each class in their own subfolder (e.g. cats/, dogs/)")
    classes, items, has_split = _items(root)
    if not items:
        raise LoadError(root, "no files in any class subfolder", "put images into the class subfolders")
    keep = subset_indices(len(items), limit, seed)
    if keep is not None:
        items = [items[i] for i in keep]

    # Pass 1 reads headers only, so the common size is known before any pixels are held:
    # each image is then shrunk as soon as it is decoded (a folder of photos stays small).
    headers, skipped = [], []
    for f, ci, val in items:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # load_image enforces its own limit
                im = Image.open(f)
            with im:
                w, h = im.size
                mode = im.mode
            if w * h > MAX_PIXELS:  # refused by load_image too; it must not set everyone's size meanwhile
                skipped.append(f"{f.relative_to(root)}: image claims {w} x {h} pixels, over the limit")
                continue
            headers.append((f, ci, val, (h, w), mode not in GRAY_MODES))
        except Exception as e:  # noqa: BLE001 - not an image at all: pass 2 would fail the same way
            skipped.append(f"{f.relative_to(root)}: cannot read image ({type(e).__name__})")
    if not headers:
        raise LoadError(root, f"none of the {len(items)} files is a readable image", "put images into the class subfolders")
    channels = 3 if any(h[4] for h in headers) else 1
    size = _target_size([h[3] for h in headers])

    images = np.empty((len(headers), channels, *size), dtype=np.uint8)
    labels, is_val = [], []
    for f, ci, val, _, _ in headers:
        try:
            a = load_image(f).array
        except LoadError as e:
            skipped.append(f"{f.relative_to(root)}: {e.problem}")
            continue
        x = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]
        x = resize(convert_channels(x, channels), size)
        images[len(labels)] = (x[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        labels.append(ci)
        is_val.append(val)
    images = images[: len(labels)]

    present = sorted(set(labels))
    for ci, c in enumerate(classes):
        if ci not in present:
            skipped.append(f"{c}/: no readable image, class left out")
    if len(present) < 2:
        raise LoadError(root, f"need images of at least 2 classes, found {len(present)}"
                        + (f" ({len(skipped)} files skipped)" if skipped else ""),
                        "add a subfolder per class, each with images")
    # Renumber so that left-out classes leave no gaps in the label range.
    remap = {old: new for new, old in enumerate(present)}
    return ImageDataset(name=root.name, images=np.ascontiguousarray(images),
                        labels=np.array([remap[c] for c in labels], dtype=np.int64),
                        class_names=tuple(classes[i] for i in present), source=str(root),
                        skipped=tuple(skipped),
                        is_val=np.array(is_val, dtype=bool) if has_split else None)
