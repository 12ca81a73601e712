"""Keeps one of the engine's training runs: its run file and its autosave (no Qt).

* The run file (``.cnnviz``, ``core/record``): every step's scalars (from the trainer's
  ``on_step``), the trainer's snapshots (at most one a second, within half the instrumentation
  budget, and the last before every epoch end and the run's end), the epoch ends and how the run ended
  (diverged, finished), with the model's ``ModelInfo`` and class names in the meta, so the
  run can be opened and scrubbed afterwards like a recorder's. ``RunWriter`` queues under a
  lock held for a list append and does the encoding and the disk on its own thread.
* The autosave (``autosave.py``): the resumable checkpoint at the first step boundary after
  every epoch end (the trainer's state is consistent there: its epoch counter and schedule
  have moved on, so a resume does not replay the epoch's end) and when the run ends.

Trouble with either is reported once as a notice and never reaches the training.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from ..snapshot import Diverged, EpochEnd, Finished, TrainingSnapshot
from . import autosave
from .autosave import AutosaveRecord, RunAutosave

log = logging.getLogger(__name__)
KEEP_RUN_FILES = 20       # run files of the app's own runs kept in the data folder's runs/
# Snapshots recorded to the run file: encoding one costs about as much as making it (LeNet-5) or
# three times as much (ResNet-18; bench/instrumentation_overhead), and the trainer's pacer counts
# it, so recording every one the views get would halve their rate or worse. Scrubbing back needs
# far fewer: at most one a second, and no more often than keeps the encoding within this share
# of the instrumentation budget. The last one before an epoch end or the end of the run is
# always recorded.
RUN_FILE_SNAPSHOTS_PER_S = 1.0
RUN_FILE_SHARE_OF_BUDGET = 0.5
RUN_SUFFIX = ".cnnviz"


class RunKeeper:
    """Created when the trainer is ready (after a resume state was loaded); fed in the engine's thread."""

    def __init__(self, trainer, *, checkpoint: Callable[[], tuple[Any, dict | None]], meta: dict,
                 emit: Callable[[str, Any], None], autosave_dir: Path | None, runs_dir: Path | None,
                 run_path: str | None = None, run_id: str | None = None):
        self._trainer = trainer
        self._checkpoint = checkpoint
        self._emit = emit
        self._due = False
        self._problems: set[str] = set()
        resumed = run_id is not None
        model = str(meta.get("model") or "model")
        self.run_id = run_id or autosave.new_run_id(model)
        self.writer = None
        self.run_file: str | None = None
        self._last_recorded = -math.inf   # monotonic time of the last snapshot sent to the writer
        self._held: TrainingSnapshot | None = None   # the newest one not recorded (yet)
        self._recorded_share: deque[float] = deque(maxlen=50)   # 1 for each recent snapshot recorded, else 0
        if run_path is not None or runs_dir is not None:
            self._open_run_file(run_path, runs_dir, meta)
        self.autosave: RunAutosave | None = None
        if autosave_dir is not None:
            c = trainer.config
            record = AutosaveRecord(
                run_id=self.run_id, checkpoint=str(Path(autosave_dir) / f"{self.run_id}.pt"),
                step=trainer.step, epoch=trainer.epoch, epochs=c.epochs, model=model,
                model_file=meta.get("model_file"), dataset=meta.get("dataset"), run_file=self.run_file,
                started=time.time())
            if resumed:   # the same run goes on: keep when it started and what it saved so far
                old = autosave.read_record(autosave.record_path(Path(autosave_dir), self.run_id))
                if old is not None:
                    record = dataclasses.replace(old, state=autosave.RUNNING, epochs=c.epochs,
                                                 run_file=self.run_file or old.run_file)
            try:
                self.autosave = RunAutosave(autosave_dir, record)
            except (OSError, RuntimeError) as e:
                self._problem("autosave", f"This run is not autosaved ({e}).")

    # ---- the run file -------------------------------------------------------------
    def _open_run_file(self, run_path: str | None, runs_dir: Path | None, meta: dict) -> None:
        from ..record.run_schema import next_run_path
        from ..record.run_writer import RunWriter
        try:
            if run_path is None:
                runs_dir.mkdir(parents=True, exist_ok=True)
                prune_run_files(runs_dir, KEEP_RUN_FILES - 1)
                run_path = next_run_path(runs_dir, self.run_id)
            try:
                self.writer = RunWriter(run_path, meta)
            except TypeError:   # a value of the meta cannot be recorded: the run still is, without it
                self.writer = RunWriter(run_path, {k: v for k, v in meta.items() if k != "model_info"})
            self.run_file = os.fspath(run_path)
            self._trainer.background_cost = self._encoding_cost   # the pacer counts the encoding too
        except (OSError, ValueError, TypeError) as e:  # FileExistsError, sqlite3 errors are OSError-like
            self._problem("run file", f"This run is not recorded to a run file ({e}).")
        except Exception as e:  # noqa: BLE001 - sqlite3.Error and friends: recording is optional
            self._problem("run file", f"This run is not recorded to a run file ({type(e).__name__}: {e}).")

    # ---- fed by the engine ----------------------------------------------------------
    def step(self, step: int, loss: float, acc: float) -> None:
        """After every optimizer step (the trainer's on_step): the scalars, and a due autosave."""
        if self.writer is not None:
            t = self._trainer
            try:
                self.writer.append_step(step, t.epoch, loss, t.lr, acc)
            except ValueError as e:
                self._problem("run file", f"The run file stopped recording ({e}).")
        if self._due:
            self._due = False
            self._save(autosave.RUNNING)

    def _encoding_cost(self) -> float:
        """The run writer's CPU seconds per snapshot the trainer makes (encoding times the share recorded)."""
        w, shares = self.writer, list(self._recorded_share)
        if w is None:
            return 0.0
        return w.encode_cost * (sum(shares) / len(shares) if shares else 1.0)

    def _snapshot(self, event: TrainingSnapshot) -> None:
        now = time.monotonic()
        budget = max(self._trainer.config.instrumentation_budget * RUN_FILE_SHARE_OF_BUDGET, 1e-6)
        due = now - self._last_recorded >= max(1.0 / RUN_FILE_SNAPSHOTS_PER_S, self.writer.encode_cost / budget)
        self._recorded_share.append(1.0 if due else 0.0)
        if due:
            self._held = None
            self._last_recorded = now
            self.writer.append_snapshot(event.step, event.epoch, event)
        else:
            self._held = event

    def _record_held(self) -> None:
        """The newest snapshot not recorded, before an epoch end or the end of the run: the run file
        shows where each epoch ended."""
        held, self._held = self._held, None
        if held is not None and self.writer is not None:
            self.writer.append_snapshot(held.step, held.epoch, held)

    def event(self, event) -> None:
        w = self.writer
        try:
            if isinstance(event, TrainingSnapshot):
                if w is not None:
                    self._snapshot(event)
                return
            self._record_held()
            if isinstance(event, EpochEnd):
                if w is not None:
                    w.append_epoch(event.epoch, event.step, event.train_loss, event.train_accuracy,
                                   event.val_loss, event.val_accuracy)
                self._due = True   # saved at the next step boundary, when the trainer has moved on
            elif isinstance(event, Diverged) and w is not None:
                w.append_event("diverged", event.step, event.message)
            elif isinstance(event, Finished) and w is not None:
                w.append_event("finished", event.step, event.reason)
        except ValueError as e:
            self._problem("run file", f"The run file stopped recording ({e}).")

    def end(self, state: str) -> None:
        """The run is over (``autosave.COMPLETED``, ``STOPPED``, ...): last save, files closed."""
        saver = self.autosave
        if saver is not None:
            if self._trainer.step > 0:
                self._save(state)
            else:   # nothing trained, nothing to resume: the record only says how it ended
                saver.record = dataclasses.replace(saver.record, state=state)
                autosave.write_record(saver.folder, saver.record)
            if not saver.close() or saver.error:
                self._problem("autosave", f"The last autosave did not complete: {saver.error or 'it took too long'}")
        try:
            self._record_held()
        except ValueError as e:
            self._problem("run file", f"The run file stopped recording ({e}).")
        if self.writer is not None:
            if self.writer.error:
                self._problem("run file", f"The run file had a problem: {self.writer.error}")
            self.writer.close(timeout=10.0)

    def _save(self, state: str) -> None:
        """Copy the state now (the engine's thread, between steps); the autosave's thread writes it."""
        if self.autosave is None:
            return
        from ..checkpoint.atomic import atomic_write
        from ..checkpoint.save import checkpoint_dict
        try:
            bundle, training = self._checkpoint()
            bundle.meta["run_id"] = self.run_id
            # The optimizer's buffers are the live ones: copy them, or the next steps would change them
            # under the writing thread. (The model's weights are already copies.)
            obj = checkpoint_dict(bundle, copy.deepcopy(training))
        except Exception as e:  # noqa: BLE001 - a state that cannot be saved must not end the run
            self._problem("autosave", f"This run could not be autosaved ({type(e).__name__}: {e}).")
            return

        def write(path: str) -> None:
            import torch
            atomic_write(path, lambda f: torch.save(obj, f))

        t = self._trainer
        self.autosave.save(write, state=state, step=t.step, epoch=t.epoch)

    def _problem(self, key: str, text: str) -> None:
        if key not in self._problems:   # once per run and kind: a failing disk must not flood the window
            self._problems.add(key)
            log.warning("%s", text)
            self._emit("notice", text)


def run_meta(engine, config) -> dict:
    """The run file's meta for the engine's open model and this run's config (recordable values only)."""
    b = engine.bundle
    return {"source": "app", "model": engine.model_name, "model_file": b.source, "arch": b.arch,
            "arch_options": {k: v for k, v in b.arch_options.items() if v is None or isinstance(v, (str, int, float, bool))},
            "model_info": engine._info, "class_names": tuple(b.class_names),
            "input_shape": tuple(int(v) for v in b.input_shape), "dataset": engine.dataset_spec,
            "config": config.to_dict(), "hz": float(config.snapshot_hz),
            "resumed_from_step": int(engine.trainer.step)}


def end_state(last, *, interrupted: bool) -> str:
    """The autosave's state for a run whose last event was ``last`` (None: it failed)."""
    if isinstance(last, Diverged):
        return autosave.DIVERGED
    if isinstance(last, Finished) and last.reason == "completed":
        return autosave.COMPLETED
    if isinstance(last, Finished):   # stopped: by the user, or by an engine whose window died
        return autosave.INTERRUPTED if interrupted else autosave.STOPPED
    return autosave.FAILED


def prune_run_files(folder: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest run files of the app's own runs folder; never one whose run
    is live (its autosave lock is held: it is being written)."""
    from ..user_dirs import autosave_dir
    locks = autosave_dir()
    live = [p.stem for p in locks.glob("*.lock") if autosave.is_live(locks, p.stem)]
    files = sorted(Path(folder).glob("*" + RUN_SUFFIX), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for p in files[keep:]:
        if any(p.stem == r or p.stem.startswith(r + "-") for r in live):
            continue
        for extra in ("", "-wal", "-shm"):
            try:
                Path(str(p) + extra).unlink()
                if not extra:
                    removed.append(p)
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("could not remove the old run file %s: %s", p, e)
    return removed
