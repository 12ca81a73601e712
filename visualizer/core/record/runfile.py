"""Run files: one ``.cnnviz`` file per training run, an SQLite database in WAL mode.

Why SQLite in WAL mode (the comparison in RECORDER-NOTES.md, section 3):

- TFRecord-style framed logs (TensorBoard) survive a killed writer, since each
  record has a CRC and a torn tail is "not yet written", but they are not random
  access: scrubbing to step N means scanning, which is why TensorBoard keeps ~10
  sampled images per tag. A run here must answer "the snapshot at step N" with
  one indexed lookup.
- HDF5 without SWMR can be left unreadable by a killed writer (h5py#1807); SWMR
  forbids new datasets once started and is unreliable on Windows and network
  file systems. zarr v3 writes chunks non-atomically (zarr-python#3411) and
  makes many small files. Append-only msgpack frames have no checksum and no
  index of their own. All of them need a dependency.
- SQLite is in the standard library, its commits are atomic, and in WAL mode
  "readers do not block writers and a writer does not block readers": the app
  reads a run while training writes it. A process killed at any moment leaves
  the database at its last commit; SQLite's WAL recovery discards a torn tail
  of frames by their checksums, so a torn tail is never an error. Its B-trees
  give random access (the snapshot at or before a step is one query), and pages
  freed by deleted rows are reused, so thinning stops the file from growing.
  Its limits (one host, no network file systems for live reading) are the
  notes' too: write the run to a local disk and copy it, or attach live.

Durability: ``synchronous=NORMAL``: a killed process loses nothing committed; a
power cut may lose the last commits but never corrupts the file. The writer
commits at every snapshot and at least once a second, and at close checkpoints
the WAL into the database and leaves WAL mode, so a finished run is one
self-contained file that opens read-only anywhere.

Size: every step's scalars are kept (old rows are packed into column chunks of
4096 rows, ~20 bytes a step); snapshots are thinned to a byte budget
(``DEFAULT_SNAPSHOT_BUDGET``) by the policy in thinning.py: evenly over the
whole run, never the first snapshot, the last of each epoch, or the one at a
diverged step.

Layout of the tables: run_schema.py. Records inside: encoding.py (no pickle).
"""
from __future__ import annotations

from .run_reader import RunReader
from .run_schema import STEP_DTYPE, SUFFIX, EpochRow, RunEvent, RunFileError, next_run_path
from .run_writer import DEFAULT_SNAPSHOT_BUDGET, RunWriter

__all__ = ["DEFAULT_SNAPSHOT_BUDGET", "STEP_DTYPE", "SUFFIX", "EpochRow", "RunEvent", "RunFileError", "RunReader",
           "RunWriter", "next_run_path"]
