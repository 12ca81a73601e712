"""CIFAR-10: the "python" pickled batches and the binary (``*.bin``) format.

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
from .image_dataset import ImageDataset, subset_indices
from .raw_bytes import read_maybe_gzipped

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
PIXELS = 3 * 32 * 32
RECORD = 1 + PIXELS  # binary format: one label byte, then R, G, B planes of 32x32

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


def read_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 32, 32) uint8 and (N,) int64 from one pickled batch."""
    d = restricted_load(path)
    if not isinstance(d, dict):
        raise LoadError(path, f"pickle holds a {type(d).__name__}, not a CIFAR batch dict", "choose a data_batch_* or test_batch file")
    data, labels = _get(d, "data"), _get(d, "labels")
    if labels is None:
        labels = _get(d, "fine_labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        shape = getattr(data, "shape", None)
        raise LoadError(path, f"batch 'data' is {getattr(data, 'dtype', type(data).__name__)} {shape}, expected uint8 (N, {PIXELS})",
                        "this is not a CIFAR-10 batch")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise LoadError(path, "batch 'labels' is not a list of integers", "this is not a CIFAR-10 batch") from e
    if labels.shape != (len(data),):
        raise LoadError(path, f"{len(data)} images but labels have shape {labels.shape}", "the batch is damaged")
    return data.reshape(-1, 3, 32, 32), labels


def read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = read_maybe_gzipped(path)
    if not data or len(data) % RECORD:
        raise LoadError(path, f"size {len(data):,} bytes is not a whole number of {RECORD}-byte CIFAR-10 records",
                        "the file is truncated, or not CIFAR-10 binary (CIFAR-100 is not supported)")
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def _class_names(folder: Path, n: int) -> tuple[str, ...]:
    meta, text = folder / "batches.meta", folder / "batches.meta.txt"
    names: list[str] = []
    if meta.is_file():
        try:
            d = restricted_load(meta)
            raw = _get(d, "label_names") if isinstance(d, dict) else None
            names = [x.decode() if isinstance(x, bytes) else str(x) for x in (raw or [])]
        except LoadError:
            names = []  # a damaged meta file costs only the names, not the data
    elif text.is_file():
        names = [ln.strip() for ln in text.read_text(errors="replace").splitlines() if ln.strip()]
    if len(names) >= n:
        return tuple(names)
    return CIFAR10_CLASSES if n <= 10 else tuple(str(i) for i in range(n))


def batch_files(folder: Path) -> list[Path]:
    pats = ("data_batch_*", "test_batch*")
    files = {p for pat in pats for p in folder.glob(pat) if p.is_file() and not p.name.endswith((".meta", ".txt"))}
    return sorted(files, key=lambda p: (p.name.startswith("test"), p.name))


def looks_like_cifar(path: Path) -> bool:
    if path.is_dir():
        return bool(batch_files(path))
    return path.name.startswith(("data_batch", "test_batch")) or path.suffix == ".bin"


def read_batch(path: Path):
    return read_binary_batch(path) if path.suffix == ".bin" else read_python_batch(path)


def load_cifar(path: Path, *, seed: int = 0, limit: int | None = None) -> ImageDataset:
    """A CIFAR-10 folder (python or binary batches; bad batches skipped and reported) or a single batch file."""
    if path.is_dir():
        files, folder = batch_files(path), path
    else:
        files, folder = [path], path.parent
    if not files:
        raise LoadError(path, "no data_batch_* or test_batch files here", "choose the cifar-10-batches-py or -bin folder")
    parts, skipped = [], []
    for f in files:
        try:
            parts.append(read_batch(f))
        except LoadError as e:
            if len(files) == 1:
                raise
            skipped.append(f"{f.name}: {e.problem}")
    if not parts:
        raise LoadError(path, "no readable CIFAR batch: " + "; ".join(skipped), "download the data set again")
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    keep = subset_indices(len(images), limit, seed)
    if keep is not None:
        images, labels = images[keep], labels[keep]
    names = _class_names(folder, int(labels.max()) + 1 if labels.size else 0)
    if labels.size and labels.max() >= len(names):
        raise LoadError(path, f"label {labels.max()} but only {len(names)} class names", "the batches are damaged")
    return ImageDataset(name=path.name, images=np.ascontiguousarray(images), labels=labels,
                        class_names=names, source=str(path), skipped=tuple(skipped))
