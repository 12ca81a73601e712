"""RunReader: reads a run file, also while a RunWriter in another process appends to it.

Opening checks, in order, that the file exists, is not empty, is SQLite, is as
long as its own header says (when it is self-contained), carries the run
application id, has a format this version reads, and holds the run tables;
every failure is one :class:`RunFileError` naming the file. The whole run is
never loaded: steps come as arrays, snapshots one at a time by an indexed query.

Following a live run: :meth:`refresh` asks SQLite whether anyone committed since
(``PRAGMA data_version``, no I/O when nothing changed) and then reads only the
rows past what it already has. Each read is one short transaction, so the
reader never holds up the writer's checkpoints for long.
"""
from __future__ import annotations

import contextlib
import math
import os
import pathlib
import sqlite3
import threading

import numpy as np

from ..model_info import ModelInfo
from .encoding import RecordError, decode_record
from .run_schema import (
    APPLICATION_ID,
    FORMAT_VERSION,
    STEP_COLUMNS,
    STEP_DTYPE,
    TABLES,
    EpochRow,
    RunEvent,
    RunFileError,
    check_file_header,
)


class RunReader:
    """One open run file; see the module docstring. Thread-safe (one lock), closes in close()."""

    def __init__(self, path):
        self.path = os.fspath(path)
        check_file_header(self.path)
        uri = pathlib.Path(os.path.abspath(self.path)).as_uri() + "?mode=ro"
        try:
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=5)
        except sqlite3.Error as e:
            raise RunFileError(self.path, f"cannot be opened ({e})") from None
        self._lock = threading.RLock()
        try:
            self._check_identity()
            self._meta: dict = {}
            self._meta_revision = None
            self._parts: list[np.ndarray] = []
            self._steps: np.ndarray | None = np.zeros(0, STEP_DTYPE)
            self._seq_hw = -1
            self._snapshot_steps = np.zeros(0, np.int64)
            self._epochs: list[EpochRow] = []
            self._events: list[RunEvent] = []
            self._epoch_hw = self._event_hw = 0
            self._data_version = None
            self.refresh()
        except BaseException:
            self._conn.close()
            raise

    def _check_identity(self) -> None:
        with self._sql():
            app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id != APPLICATION_ID:
            raise RunFileError(self.path, "an SQLite database, but not a cnn-visualizer run file")
        if version > FORMAT_VERSION:
            raise RunFileError(self.path, f"run format {version} is newer than this version of cnn-visualizer "
                                          f"reads ({FORMAT_VERSION})", "update cnn-visualizer to open it")
        missing = [t for t in TABLES if t not in tables]
        if version < 1 or missing:
            raise RunFileError(self.path, f"damaged run file: missing tables {', '.join(missing) or '(format 0)'}")

    @contextlib.contextmanager
    def _sql(self):
        """Every SQLite failure on this file becomes one RunFileError naming it."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            raise RunFileError(self.path, f"damaged run file ({e})") from None

    # ------------------------------------------------------------------ following a live run

    def refresh(self) -> bool:
        """Read what was committed since the last call; True if anything new arrived."""
        with self._lock, self._sql():
            c = self._conn
            version = c.execute("PRAGMA data_version").fetchone()[0]
            if version == self._data_version:
                return False
            self._data_version = version
            c.execute("BEGIN")
            try:
                changed = self._read_meta()
                changed |= self._read_steps()
                changed |= self._read_snapshot_steps()
                changed |= self._read_epochs_events()
            finally:
                c.execute("COMMIT")
            return changed

    def _read_meta(self) -> bool:
        row = self._conn.execute("SELECT revision, record FROM meta WHERE id = 1").fetchone()
        if row is None:
            raise RunFileError(self.path, "damaged run file: no metadata row")
        if row[0] == self._meta_revision:
            return False
        meta = self._decode(row[1], "the run's metadata")
        if not isinstance(meta, dict):
            raise RunFileError(self.path, "damaged run file: the metadata is not a dict")
        self._meta, self._meta_revision = meta, row[0]
        return True

    def _read_steps(self) -> bool:
        c, hw, new = self._conn, self._seq_hw, []
        for first, count, blob in c.execute("SELECT first_seq, count, record FROM step_chunks "
                                            "WHERE first_seq + count - 1 > ? ORDER BY first_seq", (hw,)):
            part = self._chunk(blob, count, first)
            new.append(part[max(0, hw + 1 - first):])
            hw = first + count - 1
        rows = c.execute("SELECT seq, step, epoch, loss, lr, accuracy, wall FROM steps WHERE seq > ? "
                         "ORDER BY seq", (hw,)).fetchall()
        if rows:
            nan = math.nan
            new.append(np.array([(r[1], r[2], *(nan if v is None else v for v in r[3:])) for r in rows],
                                dtype=STEP_DTYPE))
            hw = rows[-1][0]
        new = [p for p in new if len(p)]
        if not new:
            return False
        self._parts.extend(new)
        self._seq_hw = hw
        self._steps = None    # concatenated on the next steps() call
        return True

    def _chunk(self, blob, count: int, first: int) -> np.ndarray:
        cols = self._decode(blob, f"the step rows from #{first}")
        if (not isinstance(cols, dict) or set(cols) != set(STEP_COLUMNS)
                or any(not isinstance(v, np.ndarray) or v.shape != (count,) or v.dtype != STEP_DTYPE[k]
                       for k, v in cols.items())):
            raise RunFileError(self.path, f"damaged run file: the step rows from #{first} are malformed")
        out = np.empty(count, STEP_DTYPE)
        for k in STEP_COLUMNS:
            out[k] = cols[k]
        return out

    def _read_snapshot_steps(self) -> bool:
        steps = np.fromiter((r[0] for r in self._conn.execute("SELECT step FROM snapshots ORDER BY step")),
                            np.int64)
        if np.array_equal(steps, self._snapshot_steps):
            return False
        steps.setflags(write=False)
        self._snapshot_steps = steps
        return True

    def _read_epochs_events(self) -> bool:
        c = self._conn
        epochs = c.execute("SELECT id, epoch, step, train_loss, train_accuracy, val_loss, val_accuracy, wall "
                           "FROM epochs WHERE id > ? ORDER BY id", (self._epoch_hw,)).fetchall()
        events = c.execute("SELECT id, kind, step, wall, text FROM events WHERE id > ? ORDER BY id",
                           (self._event_hw,)).fetchall()
        try:
            self._epochs += [EpochRow(int(r[1]), int(r[2]), *(None if v is None else float(v) for v in r[3:7]),
                                      float(r[7])) for r in epochs]
            self._events += [RunEvent(str(r[1]), int(r[2]), float(r[3]), str(r[4])) for r in events]
        except (TypeError, ValueError):
            raise RunFileError(self.path, "damaged run file: an epoch or event row holds the wrong types") from None
        if epochs:
            self._epoch_hw = epochs[-1][0]
        if events:
            self._event_hw = events[-1][0]
        return bool(epochs or events)

    def _decode(self, blob, what: str):
        if not isinstance(blob, bytes):
            raise RunFileError(self.path, f"damaged run file: {what} is not a record")
        try:
            return decode_record(blob)
        except RecordError as e:
            raise RunFileError(self.path, f"damaged run file: {what}: {e}") from None

    # ------------------------------------------------------------------ what a viewer reads

    @property
    def meta(self) -> dict:
        """The run's metadata (what the writer was given, plus created/state/app_version)."""
        with self._lock:
            return dict(self._meta)

    @property
    def model_info(self) -> ModelInfo | None:
        info = self.meta.get("model_info")
        return info if isinstance(info, ModelInfo) else None

    @property
    def finished(self) -> bool:
        """The writer closed the run (False while it is written, and for a killed run)."""
        return self.meta.get("state") == "closed"

    def steps(self) -> np.ndarray:
        """Every step row so far, in the order written: a read-only structured array of STEP_DTYPE
        (step, epoch, loss, lr, accuracy (NaN if unknown), wall)."""
        with self._lock:
            if self._steps is None:
                self._steps = np.concatenate(self._parts) if len(self._parts) != 1 else self._parts[0].copy()
                self._parts = [self._steps]
                self._steps.setflags(write=False)
            return self._steps

    def snapshot_steps(self) -> np.ndarray:
        """Steps that have a snapshot, ascending (read-only int64)."""
        with self._lock:
            return self._snapshot_steps

    def load_snapshot(self, step: int):
        """(step, snapshot) of the nearest snapshot at or before ``step``; None if there is none."""
        found = self.load_snapshot_bytes(step)
        if found is None:
            return None
        at, blob = found
        return at, self._decode(blob, f"the snapshot at step {at}")

    def load_snapshot_bytes(self, step: int):
        """(step, encoded record) as :meth:`load_snapshot` finds it, undecoded (to forward it)."""
        with self._lock, self._sql():
            row = self._conn.execute("SELECT step, record FROM snapshot_data WHERE step <= ? "
                                     "ORDER BY step DESC LIMIT 1", (int(step),)).fetchone()
        return None if row is None else (int(row[0]), row[1])

    def epochs(self) -> list[EpochRow]:
        with self._lock:
            return list(self._epochs)

    def events(self) -> list[RunEvent]:
        with self._lock:
            return list(self._events)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
