"""CIFAR-10 and CIFAR-100: the "python" pickled batches and the binary (``*.bin``) format.

A batch tells which it is: CIFAR-10 batches (``data_batch_*``, ``test_batch``)
hold ``labels`` and one label byte per binary record; CIFAR-100's (``train``,
``test``) hold ``fine_labels`` and two label bytes (coarse, fine) per record. A
CIFAR-100 set is read with its 100 fine classes, named from its ``meta`` file
(``fine_label_names.txt`` for the binary version). Labels outside the classes
are an error naming the batch and the first bad index.

Python batches are pickles, and unpickling runs whatever callables the file
names. They are read with :class:`RestrictedUnpickler`, which resolves only
the handful of numpy/codecs globals a real CIFAR batch uses, so a crafted
batch with a code-running ``__reduce__`` is refused before anything runs.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import LoadError
from .image_dataset import ImageDataset, LabelOutOfRange, check_labels, subset_indices
from .raw_bytes import read_maybe_gzipped

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
PIXELS = 3 * 32 * 32
# Binary records: CIFAR-10 has one label byte, CIFAR-100 a coarse and a fine one; then R, G, B planes.
RECORD = {"CIFAR-10": 1 + PIXELS, "CIFAR-100": 2 + PIXELS}
NUM_CLASSES = {"CIFAR-10": 10, "CIFAR-100": 100}
CIFAR100_FILES = ("train", "test", "train.bin", "test.bin")

# What a real batch needs: ndarray reconstruction (numpy 1 and 2 module names) and
# bytes from a protocol-2 pickle. Nothing here can call arbitrary code.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # pickle protocol 5
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a callable outside the allow-list: it would run code."""


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise RefusedGlobal(f"refused to load global {module}.{name}")
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core"):]  # numpy 2 name, no deprecation warning
        return super().find_class(module, name)


def restricted_load(path: Path) -> object:
    data = read_maybe_gzipped(path)
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except RefusedGlobal as e:
        raise LoadError(path, f"{e}: the pickle would run code, it was not loaded",
                        "a CIFAR-10 python batch holds only arrays and lists; this file may be unsafe") from e
    except Exception as e:  # truncated/garbled pickles raise EOFError, ValueError, KeyError...
        raise LoadError(path, f"not a readable CIFAR pickle ({type(e).__name__}: {e})", "download the batch again") from e


def _get(d: dict, key: str):
    return d.get(key.encode(), d.get(key))


def read_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """(N, 3, 32, 32) uint8, (N,) int64 labels and "CIFAR-10" or "CIFAR-100" from one pickled batch."""
    d = restricted_load(path)
    if not isinstance(d, dict):
        raise LoadError(path, f"pickle holds a {type(d).__name__}, not a CIFAR batch dict",
                        "choose a data_batch_*, test_batch (CIFAR-10) or train/test (CIFAR-100) file")
    data, labels, kind = _get(d, "data"), _get(d, "labels"), "CIFAR-10"
    if labels is None and _get(d, "fine_labels") is not None:
        labels, kind = _get(d, "fine_labels"), "CIFAR-100"
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        shape = getattr(data, "shape", None)
        raise LoadError(path, f"batch 'data' is {getattr(data, 'dtype', type(data).__name__)} {shape}, "
                        f"expected uint8 (N, {PIXELS})", "this is not a CIFAR batch")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise LoadError(path, "batch 'labels' is not a list of integers", "this is not a CIFAR batch") from e
    if labels.shape != (len(data),):
        raise LoadError(path, f"{len(data)} images but labels have shape {labels.shape}", "the batch is damaged")
    check_labels(path, labels, NUM_CLASSES[kind], kind)
    return data.reshape(-1, 3, 32, 32), labels, kind


def _binary_kind(path: Path, size: int) -> str:
    if path.name in CIFAR100_FILES:
        return "CIFAR-100"
    if path.name.startswith(("data_batch", "test_batch")):
        return "CIFAR-10"
    return "CIFAR-10" if size % RECORD["CIFAR-10"] == 0 else "CIFAR-100"


def read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    data = read_maybe_gzipped(path)
    kind = _binary_kind(path, len(data))
    record = RECORD[kind]
    if not data or len(data) % record:
        raise LoadError(path, f"size {len(data):,} bytes is not a whole number of {record}-byte {kind} records",
                        "the file is truncated, or not a CIFAR binary batch")
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    labels = rec[:, record - PIXELS - 1].astype(np.int64)   # CIFAR-100: the fine label, after the coarse one
    check_labels(path, labels, NUM_CLASSES[kind], kind)
    return rec[:, record - PIXELS:].reshape(-1, 3, 32, 32), labels, kind


def _names_from_meta(meta: Path, key: str) -> list[str]:
    try:
        d = restricted_load(meta)
    except LoadError:
        return []   # a damaged meta file costs only the names, not the data
    raw = _get(d, key) if isinstance(d, dict) else None
    return [x.decode() if isinstance(x, bytes) else str(x) for x in (raw or [])]


def _names_from_text(text: Path) -> list[str]:
    return [ln.strip() for ln in text.read_text(errors="replace").splitlines() if ln.strip()]


def class_names(folder: Path, kind: str) -> tuple[str, ...]:
    """The set's class names from its meta file; the built-in names (CIFAR-10) or numbers if absent."""
    if kind == "CIFAR-10":
        meta, key, text = folder / "batches.meta", "label_names", folder / "batches.meta.txt"
    else:
        meta, key, text = folder / "meta", "fine_label_names", folder / "fine_label_names.txt"
    names: list[str] = []
    if meta.is_file():
        names = _names_from_meta(meta, key)
    elif text.is_file():
        names = _names_from_text(text)
    if len(names) == NUM_CLASSES[kind]:
        return tuple(names)
    return CIFAR10_CLASSES if kind == "CIFAR-10" else tuple(str(i) for i in range(NUM_CLASSES[kind]))


def batch_files(folder: Path) -> list[Path]:
    pats = ("data_batch_*", "test_batch*", *CIFAR100_FILES)
    files = {p for pat in pats for p in folder.glob(pat) if p.is_file() and not p.name.endswith((".meta", ".txt"))}
    return sorted(files, key=lambda p: (p.name.startswith("test"), p.name))


def looks_like_cifar(path: Path) -> bool:
    if path.is_dir():
        return bool(batch_files(path))
    if path.name in ("train", "test"):   # CIFAR-100's python batches: only with their meta file beside them
        return (path.parent / "meta").is_file()
    return path.name.startswith(("data_batch", "test_batch")) or path.suffix == ".bin"


def read_batch(path: Path):
    return read_binary_batch(path) if path.suffix == ".bin" else read_python_batch(path)


def load_cifar(path: Path, *, seed: int = 0, limit: int | None = None) -> ImageDataset:
    """A CIFAR-10/100 folder (python or binary batches; unreadable batches skipped and reported) or one batch."""
    if path.is_dir():
        files, folder = batch_files(path), path
    else:
        files, folder = [path], path.parent
    if not files:
        raise LoadError(path, "no data_batch_*, test_batch, train or test files here",
                        "choose the cifar-10-batches-py, cifar-100-python or -binary folder")
    parts, skipped = [], []
    for f in files:
        try:
            parts.append(read_batch(f))
        except LoadError as e:
            if len(files) == 1 or isinstance(e, LabelOutOfRange):   # wrong labels are damage, never skipped
                raise
            skipped.append(f"{f.name}: {e.problem}")
    if not parts:
        raise LoadError(path, "no readable CIFAR batch: " + "; ".join(skipped), "download the data set again")
    kinds = {p[2] for p in parts}
    if len(kinds) > 1:
        raise LoadError(path, "holds both CIFAR-10 and CIFAR-100 batches", "keep one data set per folder")
    kind = kinds.pop()
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    keep = subset_indices(len(images), limit, seed)
    if keep is not None:
        images, labels = images[keep], labels[keep]
    return ImageDataset(name=path.name, images=np.ascontiguousarray(images), labels=labels,
                        class_names=class_names(folder, kind), source=str(path), skipped=tuple(skipped))
