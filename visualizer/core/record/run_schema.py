"""The layout of a run file (an SQLite database) and the checks made before trusting one.

Tables (format 1; ``PRAGMA user_version`` holds the format, ``application_id`` marks the file):

- ``meta``           one row: the run's metadata dict as an encoded record (with the ModelInfo)
- ``steps``          the newest step rows, one SQL row each (seq, step, epoch, loss, lr, accuracy, wall)
- ``step_chunks``    older step rows, STEP_CHUNK at a time, as one encoded record of column arrays
                     (~18 bytes a step against ~48 as SQL rows, and read back as arrays without a Python loop)
- ``snapshots``      the index: step, epoch, sequence number, protected flag, byte size, wall time
- ``snapshot_data``  the encoded snapshot records, keyed by step (apart from the index so that
                     listing the steps never reads the blobs' pages)
- ``epochs``, ``events``  epoch-end figures; diverged / finished / note events
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import LoadError

SUFFIX = ".cnnviz"
APPLICATION_ID = 0x434E565A        # "CNVZ": tells a run apart from any other SQLite file
FORMAT_VERSION = 1
STEP_CHUNK = 4096
SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL, record BLOB NOT NULL);
CREATE TABLE steps (seq INTEGER PRIMARY KEY, step INTEGER NOT NULL, epoch INTEGER NOT NULL,
                    loss REAL, lr REAL, accuracy REAL, wall REAL);
CREATE TABLE step_chunks (first_seq INTEGER PRIMARY KEY, count INTEGER NOT NULL, record BLOB NOT NULL);
CREATE TABLE snapshots (step INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
                        keep INTEGER NOT NULL, nbytes INTEGER NOT NULL, wall REAL NOT NULL);
CREATE TABLE snapshot_data (step INTEGER PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE epochs (id INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, step INTEGER NOT NULL,
                     train_loss REAL, train_accuracy REAL, val_loss REAL, val_accuracy REAL, wall REAL NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, step INTEGER NOT NULL,
                     wall REAL NOT NULL, text TEXT NOT NULL);
"""
TABLES = ("meta", "steps", "step_chunks", "snapshots", "snapshot_data", "epochs", "events")

# One row per training step, as RunReader.steps() returns them.
STEP_DTYPE = np.dtype([("step", "<i8"), ("epoch", "<i8"), ("loss", "<f8"), ("lr", "<f8"),
                       ("accuracy", "<f8"), ("wall", "<f8")])
STEP_COLUMNS = STEP_DTYPE.names


class RunFileError(LoadError):
    """A run file that cannot be read: empty, truncated, foreign, too new, or damaged."""


@dataclass(frozen=True)
class EpochRow:
    epoch: int
    step: int
    train_loss: float | None
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    wall: float


@dataclass(frozen=True)
class RunEvent:
    kind: str            # "diverged", "finished", "note", ...
    step: int
    wall: float
    text: str


def check_file_header(path: str) -> None:
    """Refuse, with one clear line, what is not worth handing to SQLite: missing, empty,
    foreign, or shorter than its own header says (a truncated copy of a finished run)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        raise RunFileError(path, "no such run file") from None
    except OSError as e:
        raise RunFileError(path, f"cannot be read ({e.strerror or e})") from None
    if size == 0:
        raise RunFileError(path, "the file is empty (0 bytes)",
                           "a run that was killed before its first commit, or an interrupted copy")
    if not head.startswith(SQLITE_MAGIC):
        if SQLITE_MAGIC.startswith(head):
            raise RunFileError(path, f"truncated: {size} bytes, shorter than an SQLite header")
        raise RunFileError(path, "not a cnn-visualizer run file (not an SQLite database)")
    if len(head) < 100:
        raise RunFileError(path, f"truncated: {size} bytes, shorter than an SQLite header")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise RunFileError(path, "damaged: the SQLite header gives an invalid page size")
    pages = int.from_bytes(head[28:32], "big")
    header_size_valid = head[24:28] == head[92:96]
    # With a -wal file beside it the database file alone may lag behind; only a
    # self-contained file must be as long as its header says.
    if header_size_valid and not os.path.exists(path + "-wal") and size < pages * page_size:
        raise RunFileError(path, f"truncated: {size} bytes of the {pages * page_size} its header states",
                           "an interrupted copy or download: copy the file again")


def next_run_path(folder, stem: str = "run") -> str:
    """``folder/stem.cnnviz``, or ``stem-2.cnnviz``, ``stem-3.cnnviz``... the first that does not exist."""
    folder = os.fspath(folder)
    stem = stem.removesuffix(SUFFIX)
    candidate = os.path.join(folder, stem + SUFFIX)
    n = 2
    while os.path.exists(candidate):
        candidate = os.path.join(folder, f"{stem}-{n}{SUFFIX}")
        n += 1
    return candidate
