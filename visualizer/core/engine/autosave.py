"""Autosaves of the app's training runs: what a crash may cost is at most one epoch (torch-free).

Each run the app trains has one resumable checkpoint (the same file ``Engine.save`` and
``cnn-visualizer train --resume`` use) in the per-user data folder's ``autosave/``, replaced
atomically at the end of every epoch and when the run ends, and beside it a small JSON
record saying what the run is and how it ended. The window's process reads only the
records (this module imports no torch): a record whose run neither completed nor was
stopped (``running``: the process died; ``interrupted``: the window died and the engine
stopped itself) and whose engine is gone is an interrupted run, offered for resuming.

"Whose engine is gone" is a lock, not a pid: the engine's process holds an ``flock`` on
the run's ``.lock`` file while the run lives, and the lock dies with the process (a pid
can be reused). So a second window never offers the run a first one is training.

The writes happen on a thread of their own (the engine's thread only copies the state):
a save never holds a training step up. The records of the ``KEEP_RUNS`` most recent runs
are kept, with their checkpoints; older ones are deleted when a new run starts.
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)
KEEP_RUNS = 5            # runs whose last autosave is kept (one checkpoint each)
FINAL_SAVE_WAIT_S = 30.0  # how long the end of a run waits for its last save
RUNNING, INTERRUPTED = "running", "interrupted"     # offered for resuming once the engine is gone
COMPLETED, STOPPED, DIVERGED, FAILED, DISMISSED = "completed", "stopped", "diverged", "failed", "dismissed"
OFFERED = (RUNNING, INTERRUPTED)
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class AutosaveRecord:
    """What the window knows of an autosaved run (the JSON beside its checkpoint)."""

    run_id: str
    checkpoint: str
    state: str = RUNNING
    step: int = 0
    epoch: int = 0               # epochs completed when it was saved
    epochs: int = 0              # the run's target
    model: str = ""              # arch, or file.py:Name
    model_file: str | None = None
    dataset: str | None = None
    run_file: str | None = None
    started: float = 0.0
    saved: float = 0.0

    @property
    def saved_yet(self) -> bool:
        return self.saved > 0 and os.path.isfile(self.checkpoint)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved)) if self.saved else "never"
        data = f" on {self.dataset}" if self.dataset else ""
        return (f"{self.model or 'a model'}{data}: epoch {self.epoch} of {self.epochs} done, step {self.step} "
                f"(autosaved {when})")


def record_path(folder: Path, run_id: str) -> Path:
    return Path(folder) / f"{run_id}.json"


def new_run_id(model: str) -> str:
    """``20261201-140312-lenet5-1234``: sortable by time, readable, unique per process."""
    name = _SAFE.sub("_", os.path.basename(model.rpartition(":")[2] or model or "model"))[:40] or "model"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{os.getpid()}"


def read_record(path: Path) -> AutosaveRecord | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        fields = {f.name for f in dataclasses.fields(AutosaveRecord)}
        return AutosaveRecord(**{k: v for k, v in data.items() if k in fields})
    except (OSError, ValueError, TypeError):
        return None   # a damaged record is not offered; its run stays where it is


def write_record(folder: Path, record: AutosaveRecord) -> None:
    from ..checkpoint.atomic import atomic_write
    data = json.dumps(dataclasses.asdict(record), indent=1).encode()
    atomic_write(record_path(folder, record.run_id), lambda f: f.write(data))


def _lock_file(folder: Path, run_id: str) -> Path:
    return Path(folder) / f"{run_id}.lock"


def is_live(folder: Path, run_id: str) -> bool:
    """Whether an engine process still holds the run's lock (it is training or saving it now)."""
    try:
        fd = os.open(_lock_file(folder, run_id), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return True   # cannot tell: never offer (or delete) what may be alive
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL)
    finally:
        os.close(fd)   # closing releases a lock we took
    return False


def interrupted_runs(folder: Path) -> list[AutosaveRecord]:
    """Runs that were neither completed nor stopped and whose engine is gone, newest first."""
    found = []
    for path in Path(folder).glob("*.json"):
        rec = read_record(path)
        if rec is not None and rec.state in OFFERED and rec.saved_yet and not is_live(folder, rec.run_id):
            found.append(rec)
    return sorted(found, key=lambda r: r.saved, reverse=True)


def mark(folder: Path, record: AutosaveRecord, state: str) -> AutosaveRecord:
    """Record a decision about an offered run (``DISMISSED``: not offered again; the checkpoint stays)."""
    record = dataclasses.replace(record, state=state)
    write_record(folder, record)
    return record


def prune(folder: Path, keep: int = KEEP_RUNS, *, spare: str | None = None) -> list[Path]:
    """Delete the autosaves of all but the ``keep`` most recent runs (never a live one, never ``spare``)."""
    records = [r for r in (read_record(p) for p in Path(folder).glob("*.json")) if r is not None]
    records.sort(key=lambda r: (r.started, r.run_id), reverse=True)
    removed = []
    for rec in records[keep:]:
        if rec.run_id == spare or is_live(folder, rec.run_id):
            continue
        for p in (Path(rec.checkpoint), record_path(folder, rec.run_id), _lock_file(folder, rec.run_id)):
            if p.parent == Path(folder):   # only files of this folder, whatever a record says
                try:
                    p.unlink()
                    removed.append(p)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    log.warning("could not remove the old autosave %s: %s", p, e)
    return removed


class RunAutosave:
    """One run's autosave, from the engine's side: the lock, the saves (on a thread), the record.

    ``save(write, ...)``: ``write(path)`` writes the checkpoint atomically; it is called on
    the autosave's thread with state the engine's thread has already copied. A save still
    waiting when a newer one comes is replaced by it (only the latest state matters).
    """

    def __init__(self, folder: Path, record: AutosaveRecord, *, keep: int = KEEP_RUNS):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(_lock_file(self.folder, record.run_id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                os.close(self._lock_fd)
                raise RuntimeError(f"the run {record.run_id} is being trained by another window") from e
        self.record = record
        self.error: str | None = None
        self.saves = 0
        self._cond = threading.Condition()
        self._pending: tuple | None = None
        self._busy = False
        self._closed = False
        write_record(self.folder, record)   # before the first save: the run is known, not yet offered
        prune(self.folder, keep, spare=record.run_id)
        self._thread = threading.Thread(target=self._run, name="autosave", daemon=True)
        self._thread.start()

    def save(self, write: Callable[[str], None], **figures) -> None:
        """Queue a save; ``figures`` update the record (state, step, epoch)."""
        with self._cond:
            if self._closed:
                return
            self._pending = (write, figures)
            self._cond.notify_all()

    def close(self, timeout_s: float = FINAL_SAVE_WAIT_S) -> bool:
        """Wait for the last save, then release the lock; True when every queued save is on disk."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            done = self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout_s)
        self._thread.join(1.0)
        os.close(self._lock_fd)   # the lock goes with it: from now on the run may be offered
        return done and self.error is None

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None:
                    return
                (write, figures), self._pending = self._pending, None
                self._busy = True
            try:
                write(self.record.checkpoint)
                self.record = dataclasses.replace(self.record, saved=time.time(), **figures)
                write_record(self.folder, self.record)
                self.saves += 1
                self.error = None
            except Exception as e:  # noqa: BLE001 - a full disk must not end the training; it is reported
                self.error = f"{type(e).__name__}: {e}"
                log.warning("autosave of %s failed: %s", self.record.run_id, self.error)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
