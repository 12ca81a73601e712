"""RunWriter: appends a training run to a run file from its own thread.

The training thread only validates its arguments and appends to in-memory
queues under a lock held for a list append (microseconds); the writer thread
encodes snapshots, writes, commits and thins. It commits at every snapshot and
at least every ``commit_interval`` seconds, so a SIGKILL loses at most the last
second of step rows and never a committed one (runfile.py says why).

Back-pressure never reaches the caller: step rows, epochs, events and metadata
are never dropped (they are small; if the disk stalls they wait in memory);
snapshots wait in a queue of ``max_pending_snapshots``, and when the disk falls
that far behind the newest waiting snapshot is replaced by the arriving one
(the first snapshot of the run is never replaced): ``stats["snapshots_dropped"]``
counts them. A failing disk (full, gone) is reported in ``error`` and ``stats``,
retried every interval, and never raised into the training loop.
"""
from __future__ import annotations

import atexit
import contextlib
import math
import os
import secrets
import sqlite3
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from ... import __version__
from .encoding import encode_record, is_record
from .run_schema import APPLICATION_ID, FORMAT_VERSION, SCHEMA, STEP_CHUNK, STEP_COLUMNS, STEP_DTYPE
from .thinning import SnapshotThinner

# An hour of LeNet-5 at 10 snapshots/s is 36,000 snapshots of ~37 KB, 1.3 GB; this keeps
# one in 16 of them (2,260, evenly spread) and the file at 173 MB with the hour's 720,000
# step rows (bench/runfile_size.py). Thinning halves the stored snapshots whenever they pass
# the budget, and freed pages stay in the file for reuse, so the file ends near the budget
# plus ~13 MB of step rows per hour, whatever the snapshot size.
DEFAULT_SNAPSHOT_BUDGET = 150 << 20


@dataclass
class _Snapshot:
    step: int
    epoch: int
    payload: object      # encoded bytes, or a snapshot object the writer thread encodes
    wall: float
    first: bool


@dataclass
class _Batch:
    steps: list
    ops: list


@dataclass
class _Op:
    kind: str            # "epoch", "event", "meta", "flush", "close"
    args: tuple = ()


def _float(x) -> float:
    return math.nan if x is None else float(x)


class RunWriter:
    """Writes one run file; see the module docstring. Use as a context manager or call close()."""

    def __init__(self, path, meta: dict | None = None, *, overwrite: bool = False,
                 snapshot_budget: int = DEFAULT_SNAPSHOT_BUDGET, max_pending_snapshots: int = 64,
                 commit_interval: float = 1.0, compact: bool = True):
        self.path = os.fspath(path)
        self._meta = {**(meta or {}), "created": time.time(), "state": "recording",
                      "app_version": __version__}
        meta_record = encode_record(self._meta, compact=False)   # a meta that cannot be recorded fails here
        _create_run_file(self.path, meta_record, overwrite)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        for pragma in ("synchronous=NORMAL", "journal_size_limit=67108864", "cache_size=-16384"):
            self._conn.execute(f"PRAGMA {pragma}")
        self._compact = compact
        self._interval = float(commit_interval)
        self._max_pending = max(1, int(max_pending_snapshots))
        self._thinner = SnapshotThinner(snapshot_budget)
        self._lock = threading.Lock()
        self._encode_costs: deque[float] = deque(maxlen=5)   # see encode_cost
        self._wake = threading.Event()
        self._steps: list[tuple] = []
        self._ops: deque = deque()
        self._pending_snapshots = 0
        self._newest_pending: _Snapshot | None = None
        self._offered = 0
        self._closed = False
        self._pid = os.getpid()
        self._next_seq = 0
        self._tail: list[tuple] = []        # step rows in the `steps` table, not yet in a chunk
        self._meta_revision = 1
        self.error: str | None = None       # the last write failure, if any
        self._close_ok = False
        self._stats = dict(steps=0, last_committed_step=None, snapshots_written=0, snapshots_dropped=0,
                           snapshots_rejected=0, snapshots_failed=0, snapshot_bytes_written=0, commits=0,
                           longest_commit_s=0.0, errors=0)
        self._thread = threading.Thread(target=self._run, name=f"RunWriter[{os.path.basename(self.path)}]",
                                        daemon=True)
        self._thread.start()
        # A forgotten close() still ends in a committed, checkpointed file at interpreter exit.
        atexit.register(self._close_at_exit)

    # ------------------------------------------------------------------ the training thread's side

    def append_step(self, step: int, epoch: int, loss, lr, accuracy=None, wall: float | None = None) -> None:
        """One step's scalars (Python numbers: a tensor here would synchronise the device)."""
        row = (int(step), int(epoch), _float(loss), _float(lr), _float(accuracy),
               time.time() if wall is None else float(wall))
        with self._lock:
            self._check_open()
            self._steps.append(row)

    def append_steps(self, rows) -> None:
        """Rows of (step, epoch, loss, lr, accuracy[, wall]); accuracy None/NaN if unknown."""
        now = time.time()
        out = []
        for r in rows:
            if len(r) not in (5, 6):
                raise ValueError(f"a step row has {len(r)} values; expected (step, epoch, loss, lr, accuracy[, wall])")
            out.append((int(r[0]), int(r[1]), _float(r[2]), _float(r[3]), _float(r[4]),
                        now if len(r) == 5 else float(r[5])))
        with self._lock:
            self._check_open()
            self._steps.extend(out)

    def append_snapshot(self, step: int, epoch: int, record) -> bool:
        """Queue a snapshot (an object of the record schema, or encode_record bytes).

        Returns False when the queue was full and a snapshot was dropped for it
        (the newest waiting one, replaced by this one; or this one, if the only
        waiting one is the run's first).
        """
        if isinstance(record, (bytes, bytearray, memoryview)):
            record = bytes(record)
            if not is_record(record):
                raise ValueError("append_snapshot got bytes that are not an encoded record")
        snap = _Snapshot(int(step), int(epoch), record, time.time(), False)
        with self._lock:
            self._check_open()
            snap.first = self._offered == 0
            self._offered += 1
            if self._pending_snapshots >= self._max_pending:
                self._stats["snapshots_dropped"] += 1
                newest = self._newest_pending
                if newest is not None and not newest.first:
                    newest.step, newest.epoch, newest.payload, newest.wall = snap.step, snap.epoch, record, snap.wall
                return False
            self._ops.append(snap)
            self._pending_snapshots += 1
            self._newest_pending = snap
        self._wake.set()
        return True

    def append_epoch(self, epoch: int, step: int, train_loss=None, train_accuracy=None,
                     val_loss=None, val_accuracy=None) -> None:
        """Epoch-end figures; also protects the epoch's last snapshot from thinning."""
        vals = tuple(None if v is None else float(v) for v in (train_loss, train_accuracy, val_loss, val_accuracy))
        self._queue(_Op("epoch", (int(epoch), int(step), *vals, time.time())))

    def append_event(self, kind: str, step: int, text: str = "") -> None:
        """An event ("diverged", "finished", "note", ...); a diverged step's snapshot is protected."""
        if not isinstance(kind, str) or not kind or len(kind) > 64:
            raise ValueError("an event kind is a non-empty str of at most 64 characters")
        self._queue(_Op("event", (kind, int(step), time.time(), str(text)[:65536])))

    def update_meta(self, items: dict | None = None, **more) -> None:
        """Merge ``items`` into the run's metadata (values must be recordable)."""
        with self._lock:
            self._check_open()
            merged = {**self._meta, **(items or {}), **more}
        record = encode_record(merged, compact=False)   # not recordable: TypeError here, nothing changed
        with self._lock:
            self._check_open()
            self._meta = merged
            self._ops.append(_Op("meta", (record,)))
        self._wake.set()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until everything appended so far is committed; False on timeout or a write error."""
        done = threading.Event()
        result = []
        self._queue(_Op("flush", (done, result)))
        return done.wait(timeout) and result == [True]

    def close(self, timeout: float | None = 30.0) -> bool:
        """Commit everything, mark the run closed, checkpoint the WAL into the one file, stop.

        Never raises for disk trouble; returns False if the final commit did not happen
        within ``timeout`` (see ``error``). Safe to call twice.
        """
        with self._lock:
            if self._closed:
                closing = False
            else:
                self._closed = closing = True
                self._ops.append(_Op("close"))
        if closing:
            atexit.unregister(self._close_at_exit)
            self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive() and self._close_ok

    def _close_at_exit(self) -> None:
        if os.getpid() == self._pid:    # not in a forked child that inherited this object
            self.close(timeout=10.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def stats(self) -> dict:
        """Counters: steps (committed), snapshots written/stored/dropped/thinned/rejected, bytes, ..."""
        t = self._thinner
        return {**self._stats, "snapshots_stored": len(t.kept), "snapshots_thinned": t.thinned,
                "snapshot_bytes": t.total, "thinning_level": t.level, "pending_steps": len(self._steps),
                "pending_snapshots": self._pending_snapshots, "error": self.error}

    def _queue(self, op: _Op) -> None:
        with self._lock:
            self._check_open()
            self._ops.append(op)
        self._wake.set()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the run writer of {self.path} is closed")

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            with self._lock:
                batch = _Batch(self._steps, list(self._ops))
                self._steps = []
                self._ops.clear()
                self._pending_snapshots = 0
                self._newest_pending = None
            try:
                if self._write(batch):
                    return
            except Exception as e:  # noqa: BLE001 - the writer must outlive any failure: training goes on
                self._failed(e, batch)
                self._wake.wait(self._interval)   # back off before the retry

    def _write(self, batch: _Batch) -> bool:
        """Write one drained batch, one transaction per op; True once the close request is done.

        ``batch`` is consumed as it commits, so that after a failure it holds exactly
        what is not on disk yet.
        """
        while batch.ops:
            op = batch.ops[0]
            if isinstance(op, _Snapshot):
                data = self._encode(op)
                if data is not None:
                    with self._transaction(batch):
                        self._insert_snapshot(op, data)
            elif op.kind == "flush":
                with self._transaction(batch):
                    pass
                done, result = op.args
                result.append(True)
                done.set()
            elif op.kind == "close":
                with self._transaction(batch):
                    self._meta.update(state="closed", closed=time.time(), stats=self._final_stats())
                    self._write_meta(encode_record(self._meta, compact=False))
                self._finish()
                self._close_ok = True
                return True
            else:
                with self._transaction(batch):
                    self._apply(op)
            batch.ops.pop(0)
        if batch.steps:
            with self._transaction(batch):
                pass
        return False

    @contextlib.contextmanager
    def _transaction(self, batch: _Batch):
        """BEGIN IMMEDIATE; the batch's waiting step rows; the caller's writes; COMMIT."""
        c = self._conn
        t0 = time.perf_counter()
        c.execute("BEGIN IMMEDIATE")
        try:
            n = self._insert_steps(batch.steps)
            yield
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        self._stats["commits"] += 1
        self._stats["longest_commit_s"] = max(self._stats["longest_commit_s"], time.perf_counter() - t0)
        if n:
            self._stats["steps"] += n
            self._stats["last_committed_step"] = batch.steps[-1][0]
            batch.steps = []

    @property
    def encode_cost(self) -> float:
        """CPU seconds the writer's thread spends encoding a snapshot (median of the last few; 0 before any):
        a trainer in the same process counts it against its instrumentation budget."""
        costs = list(self._encode_costs)
        return statistics.median_low(costs) if costs else 0.0

    def _encode(self, snap: _Snapshot) -> bytes | None:
        if isinstance(snap.payload, bytes):
            return snap.payload
        try:
            started = time.thread_time()
            record = encode_record(snap.payload, compact=self._compact)
            self._encode_costs.append(time.thread_time() - started)
            return record
        except (TypeError, ValueError) as e:
            self._stats["snapshots_rejected"] += 1
            self.error = f"snapshot at step {snap.step} not recorded: {e}"
            return None

    def _insert_steps(self, steps: list) -> int:
        """Append rows to the ``steps`` table, packing every STEP_CHUNK of them into a chunk.

        Rows that fill a chunk within this batch go straight into it, so the table
        never holds more than one chunk's worth (a long batch after a stalled disk
        would otherwise grow it, and the file with it, for one transaction).
        """
        if not steps:
            return 0
        seq = self._next_seq
        rows = [(seq + i, *r) for i, r in enumerate(steps)]
        self._next_seq += len(rows)
        pos = 0
        while len(self._tail) + len(rows) - pos >= STEP_CHUNK:
            take = STEP_CHUNK - len(self._tail)
            self._compact_steps(self._tail + rows[pos:pos + take])
            self._tail = []
            pos += take
        rest = rows[pos:]
        self._conn.executemany("INSERT INTO steps VALUES (?,?,?,?,?,?,?)", rest)
        self._tail.extend(rest)
        return len(rows)

    def _compact_steps(self, rows: list) -> None:
        """Pack STEP_CHUNK rows into one column-wise zlib record (~18 bytes a step; ~48 as SQL rows)."""
        table = np.array([r[1:] for r in rows], dtype=np.float64)
        cols = {}
        for j, name in enumerate(STEP_COLUMNS):
            cols[name] = np.ascontiguousarray(table[:, j]).astype(STEP_DTYPE[name])
        cols["step"] = np.array([r[1] for r in rows], np.int64)     # ints exactly, not through float64
        cols["epoch"] = np.array([r[2] for r in rows], np.int64)
        record = encode_record(cols, compact=False, compress=True)
        first, last = rows[0][0], rows[-1][0]
        self._conn.execute("INSERT INTO step_chunks VALUES (?,?,?)", (first, len(rows), record))
        self._conn.execute("DELETE FROM steps WHERE seq BETWEEN ? AND ?", (first, last))   # the tail part

    def _insert_snapshot(self, snap: _Snapshot, data: bytes) -> None:
        entry, plan = self._thinner.add(snap.step, snap.epoch, len(data))
        self._apply_plan(plan)
        self._conn.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?,?,?,?)",
                           (snap.step, snap.epoch, entry.seq, int(entry.keep), len(data), snap.wall))
        self._conn.execute("INSERT OR REPLACE INTO snapshot_data VALUES (?,?)", (snap.step, data))
        self._stats["snapshots_written"] += 1
        self._stats["snapshot_bytes_written"] += len(data)

    def _apply_plan(self, plan) -> None:
        c = self._conn
        if plan.delete:
            c.executemany("DELETE FROM snapshot_data WHERE step = ?", [(s,) for s in plan.delete])
            c.executemany("DELETE FROM snapshots WHERE step = ?", [(s,) for s in plan.delete])
        if plan.protect:
            c.executemany("UPDATE snapshots SET keep = 1 WHERE step = ?", [(s,) for s in plan.protect])

    def _apply(self, op: _Op) -> None:
        if op.kind == "epoch":
            self._conn.execute("INSERT INTO epochs (epoch, step, train_loss, train_accuracy, val_loss, "
                               "val_accuracy, wall) VALUES (?,?,?,?,?,?,?)", op.args)
            self._apply_plan(self._thinner.end_epoch(op.args[0]))
        elif op.kind == "event":
            self._conn.execute("INSERT INTO events (kind, step, wall, text) VALUES (?,?,?,?)", op.args)
            if op.args[0] == "diverged":
                self._apply_plan(self._thinner.diverged(op.args[1]))
        elif op.kind == "meta":
            self._write_meta(op.args[0])

    def _write_meta(self, record: bytes) -> None:
        self._meta_revision += 1
        self._conn.execute("UPDATE meta SET revision = ?, record = ? WHERE id = 1", (self._meta_revision, record))

    def _final_stats(self) -> dict:
        s = {**self.stats, "steps": self._next_seq}   # this last transaction's rows included
        return {k: s[k] for k in ("steps", "snapshots_written", "snapshots_stored", "snapshots_dropped",
                                  "snapshots_thinned", "snapshots_rejected", "snapshots_failed", "errors")}

    def _finish(self) -> None:
        """Fold the WAL into the database file and leave rollback-journal mode, so a finished
        run is one self-contained file that opens read-only anywhere (even where a -shm
        file could not be created). With a reader still attached the mode switch is
        refused; the checkpoint alone still makes the file complete."""
        c = self._conn
        try:
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            c.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.OperationalError:
            pass    # a reader holds the WAL open; it is merged when the last connection closes
        c.close()

    def _failed(self, e: Exception, batch: _Batch) -> None:
        """A transaction failed (disk full, I/O error): put memory back in line with the disk and
        requeue what must not be lost (steps, epochs, events, meta, close); the snapshot whose
        write failed is lost, and a waiting flush() returns False."""
        self._stats["errors"] += 1
        self.error = f"{type(e).__name__}: {e}"
        try:
            self._reload_state()
        except sqlite3.Error:
            pass    # the next batch fails the same way and comes back here
        if batch.ops and isinstance(batch.ops[0], _Snapshot):
            self._stats["snapshots_failed"] += 1
            batch.ops.pop(0)
        keep = []
        for op in batch.ops:
            if isinstance(op, _Op) and op.kind == "flush":
                op.args[0].set()
            else:
                keep.append(op)   # snapshots too: they count against max_pending_snapshots again
        with self._lock:
            self._steps[:0] = batch.steps
            for op in reversed(keep):
                self._ops.appendleft(op)
                if isinstance(op, _Snapshot):
                    self._pending_snapshots += 1

    def _reload_state(self) -> None:
        c = self._conn
        self._tail = [tuple(r) for r in c.execute("SELECT * FROM steps ORDER BY seq")]
        top = c.execute("SELECT max(seq) FROM steps").fetchone()[0]
        chunk = c.execute("SELECT max(first_seq + count - 1) FROM step_chunks").fetchone()[0]
        self._next_seq = max(-1 if top is None else top, -1 if chunk is None else chunk) + 1
        self._thinner.reload(c.execute("SELECT step, epoch, seq, nbytes, keep FROM snapshots"))
        self._meta_revision = c.execute("SELECT revision FROM meta").fetchone()[0]


def _create_run_file(path: str, meta_record: bytes, overwrite: bool) -> None:
    """Make the complete empty run in a temporary file beside ``path``, then link it into place.

    A reader therefore never sees a half-created run (an empty file or one without
    tables), and two writers racing for one name cannot both win: os.link refuses
    an existing target where os.replace would silently take it over.
    """
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path}: a run file already exists (pass overwrite=True or use next_run_path)")
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    # os.open rather than mkstemp: mkstemp's 0600 would make every run private to its writer.
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA page_size=4096")
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={FORMAT_VERSION}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO meta VALUES (1, 1, ?)", (meta_record,))
            conn.execute("COMMIT")
        finally:
            conn.close()
        if overwrite:
            for extra in ("-wal", "-shm"):    # a stale WAL of the old run must not replay into the new one
                _remove(path + extra)
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise FileExistsError(f"{path}: a run file already exists (pass overwrite=True or use next_run_path)") from None
        except OSError:      # a file system without hard links: check-then-replace, nearly as good
            if os.path.exists(path):
                raise FileExistsError(f"{path}: a run file already exists") from None
            os.replace(tmp, path)
    finally:
        for extra in ("", "-wal", "-shm", "-journal"):
            _remove(tmp + extra)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
