"""Run files on a real disk: round trips, refusals, thinning, a writer that never blocks, SIGKILL, live follow."""
import math
import os
import random
import shutil
import sqlite3
import time

import numpy as np
import pytest

from tests.core.record.child import Child
from tests.core.record.same import walk
from visualizer.core.errors import LoadError
from visualizer.core.record.encoding import encode_record
from visualizer.core.record.runfile import RunFileError, RunReader, RunWriter, next_run_path


def write_run(path, lenet, *, steps=5000, **kw):
    """A closed run: ModelInfo in its meta, 4 real snapshots, `steps` step rows over two epochs, events."""
    info, snaps = lenet
    with RunWriter(path, {"model_info": info, "arch": "lenet5"}, **kw) as w:
        for i in range(steps):
            w.append_step(i, i * 2 // steps, 2.0 / (i + 1), 0.05, math.nan if i % 3 else 0.25, wall=1000.0 + i)
        for k, snap in enumerate(snaps):
            w.append_snapshot(3 * k, 0, snap)
        w.append_epoch(0, steps // 2 - 1, 0.9, 0.7, 1.0, None)
        w.append_event("note", 7, "hello")
        w.update_meta(dataset="digits")
    return path


@pytest.fixture
def closed_run(tmp_path, lenet):
    return write_run(tmp_path / "run.cnnviz", lenet)


def test_a_closed_run_reads_back_everything(closed_run, lenet):
    info, snaps = lenet
    assert not os.path.exists(str(closed_run) + "-wal")        # one self-contained file
    with open(closed_run, "rb") as f:
        assert f.read(20)[18:20] == b"\x01\x01"                 # rollback journal: opens read-only anywhere
    with RunReader(closed_run) as r:
        assert r.finished and r.meta["arch"] == "lenet5" and r.meta["dataset"] == "digits"
        assert r.model_info == info
        st = r.steps()
        assert len(st) == 5000 and np.array_equal(st["step"], np.arange(5000))   # chunked rows and the tail
        assert np.array_equal(st["loss"], 2.0 / (np.arange(5000) + 1)) and st["wall"][10] == 1010.0
        assert st["accuracy"][0] == 0.25 and math.isnan(st["accuracy"][1])
        assert not st.flags.writeable
        assert list(r.snapshot_steps()) == [0, 3, 6, 9]
        at, snap = r.load_snapshot(7)
        assert at == 6
        walk(snaps[2], snap, compacted=[])      # stored compact: within the stated precision
        assert r.load_snapshot(-1) is None and r.load_snapshot(10 ** 9)[0] == 9
        assert [(e.epoch, e.step, e.val_accuracy) for e in r.epochs()] == [(0, 2499, None)]
        assert [(e.kind, e.step, e.text) for e in r.events()] == [("note", 7, "hello")]
        assert r.meta["stats"]["steps"] == 5000 and r.refresh() is False


def test_an_existing_run_is_never_overwritten_unless_asked(closed_run, lenet):
    before = os.path.getsize(closed_run)
    with pytest.raises(FileExistsError, match="already exists"):
        RunWriter(closed_run)
    assert os.path.getsize(closed_run) == before
    fresh = next_run_path(closed_run.parent, "run")
    assert fresh.endswith("run-2.cnnviz")
    RunWriter(fresh).close()
    assert next_run_path(closed_run.parent, "run").endswith("run-3.cnnviz")
    with RunWriter(closed_run, {"arch": "other"}, overwrite=True):
        pass
    with RunReader(closed_run) as r:
        assert r.meta["arch"] == "other" and len(r.steps()) == 0
    assert [p for p in os.listdir(closed_run.parent) if p.endswith(".tmp")] == []


def _refused(path, words):
    with pytest.raises(RunFileError) as e:
        r = RunReader(path)
        for s in r.snapshot_steps():
            r.load_snapshot(s)
    msg = str(e.value)
    assert isinstance(e.value, LoadError) and str(path) in msg and words in msg and "\n" not in msg, msg


def test_empty_foreign_truncated_and_other_sqlite_files_are_refused(tmp_path, closed_run):
    _refused(tmp_path / "missing.cnnviz", "no such run file")
    (tmp_path / "empty.cnnviz").write_bytes(b"")
    _refused(tmp_path / "empty.cnnviz", "empty")
    (tmp_path / "text.cnnviz").write_text("step,loss\n1,0.5\n")
    _refused(tmp_path / "text.cnnviz", "not a cnn-visualizer run file (not an SQLite database)")
    (tmp_path / "tiny.cnnviz").write_bytes(b"SQLite for")
    _refused(tmp_path / "tiny.cnnviz", "truncated")
    data = closed_run.read_bytes()
    (tmp_path / "half.cnnviz").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "half.cnnviz", "truncated")
    other = tmp_path / "other.cnnviz"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE t (x)")
    _refused(other, "an SQLite database, but not a cnn-visualizer run file")


def _copy(src, dst, sql=None, args=()):
    shutil.copy(src, dst)
    if sql:
        c = sqlite3.connect(dst)
        c.execute(sql, args)
        c.commit()
        c.close()
    return dst


def test_newer_formats_and_damaged_records_are_refused(tmp_path, closed_run):
    _refused(_copy(closed_run, tmp_path / "new.cnnviz", "PRAGMA user_version = 7"), "run format 7 is newer")
    _refused(_copy(closed_run, tmp_path / "t.cnnviz", "DROP TABLE events"), "missing tables events")
    blob = sqlite3.connect(closed_run).execute("SELECT record FROM snapshot_data WHERE step = 6").fetchone()[0]
    flipped = bytearray(blob)
    flipped[len(flipped) // 2] ^= 0x40
    _refused(_copy(closed_run, tmp_path / "flip.cnnviz", "UPDATE snapshot_data SET record = ? WHERE step = 6",
                   (bytes(flipped),)), "the snapshot at step 6: checksum mismatch")
    _refused(_copy(closed_run, tmp_path / "cut.cnnviz", "UPDATE snapshot_data SET record = substr(record, 1, 50)"),
             "the snapshot at step 0")
    _refused(_copy(closed_run, tmp_path / "text.cnnviz", "UPDATE snapshot_data SET record = 'abc'"), "not a record")
    _refused(_copy(closed_run, tmp_path / "chunk.cnnviz", "UPDATE step_chunks SET record = ?",
                   (encode_record({"step": np.zeros(3, np.int64)}),)), "step rows from #0 are malformed")
    _refused(_copy(closed_run, tmp_path / "meta.cnnviz", "UPDATE meta SET record = ?", (encode_record([1]),)),
             "metadata is not a dict")


def test_garbage_pages_are_refused_not_crashed_on(tmp_path, closed_run):
    bad = _copy(closed_run, tmp_path / "pages.cnnviz")
    data = bytearray(bad.read_bytes())
    rng = np.random.default_rng(3)
    data[4096:] = rng.integers(0, 256, len(data) - 4096, dtype=np.uint8).tobytes()
    bad.write_bytes(bytes(data))
    _refused(bad, "damaged run file")


def test_thinning_keeps_the_budget_and_reuses_freed_pages(tmp_path, lenet_records):
    path = tmp_path / "thin.cnnviz"
    budget = 20 * max(len(r) for r in lenet_records)   # about 20 snapshots fit: 400 must be thinned
    sizes = []
    with RunWriter(path, snapshot_budget=budget, max_pending_snapshots=1000) as w:
        for i in range(400):
            w.append_step(i, i // 100, 1.0, 0.1)
            w.append_snapshot(i, i // 100, lenet_records[i % 4])
            if i == 250:
                w.append_event("diverged", 250, "loss is NaN")
            if i % 100 == 99:
                assert w.flush(30)
                sizes.append(os.path.getsize(path) + os.path.getsize(str(path) + "-wal"))
        stats = w.stats
    written = sum(len(lenet_records[i % 4]) for i in range(400))
    assert written > 15 * budget and stats["snapshots_dropped"] == 0
    with RunReader(path) as r:
        kept = set(int(s) for s in r.snapshot_steps())
        assert {0, 99, 199, 299, 399, 250} <= kept                # first, epochs' last, diverged
        stored = sum(len(r.load_snapshot_bytes(s)[1]) for s in kept)
        protected = sum(len(lenet_records[s % 4]) for s in (0, 99, 199, 299, 399, 250))
        assert stored <= budget + protected
        assert len(kept) == stats["snapshots_stored"] and stats["snapshots_thinned"] == 400 - len(kept)
        gaps = np.diff(sorted(kept - {99, 199, 299, 250}))
        assert gaps.max() <= 2 ** stats["thinning_level"] + 1     # spread over the whole run
    final = os.path.getsize(path)
    assert final < 2 * budget, (final, sizes)    # 15 MB went in: freed pages were reused
    assert sizes[-1] < 1.5 * sizes[1], sizes     # and the file stopped growing


def test_the_training_thread_never_waits_and_no_scalar_is_dropped(tmp_path, lenet):
    snaps = lenet[1]
    path = tmp_path / "fast.cnnviz"
    call_times = []
    with RunWriter(path, max_pending_snapshots=2) as w:
        for i in range(6000):
            t0 = time.perf_counter()
            w.append_step(i, 0, 1.0, 0.1, 0.5)
            if i % 30 == 0:     # 200 snapshot objects: the writer must encode each (ms apiece)
                w.append_snapshot(i, 0, snaps[(i // 30) % 4])
            call_times.append(time.perf_counter() - t0)
        stats = w.stats
    assert np.median(call_times) < 50e-6, np.median(call_times)
    assert max(call_times) < 0.1          # at worst a GIL hand-over, never a disk wait
    assert stats["snapshots_dropped"] > 0
    with RunReader(path) as r:
        assert np.array_equal(r.steps()["step"], np.arange(6000))
        assert r.meta["stats"]["snapshots_written"] + r.meta["stats"]["snapshots_dropped"] == 200
        assert 0 in r.snapshot_steps()


def test_appending_after_close_is_an_error_and_bad_rows_are_refused(tmp_path):
    w = RunWriter(tmp_path / "c.cnnviz")
    with pytest.raises(ValueError, match="expected"):
        w.append_steps([(1, 2)])
    with pytest.raises(ValueError, match="not an encoded record"):
        w.append_snapshot(0, 0, b"junk")
    with pytest.raises(TypeError):
        RunWriter(tmp_path / "d.cnnviz", {"x": object()})
    assert not (tmp_path / "d.cnnviz").exists()
    assert w.close() and w.close()
    with pytest.raises(ValueError, match="closed"):
        w.append_step(0, 0, 1.0, 0.1)


def test_a_run_killed_at_random_moments_keeps_every_committed_step(tmp_path):
    rng = random.Random(int(time.time()))
    for round_ in range(4):
        path = tmp_path / f"killed{round_}.cnnviz"
        with Child("writer_child.py", path, "kill") as child:
            child.wait_line(lambda l: l.startswith("committed"))
            time.sleep(rng.uniform(0.0, 0.6))     # chooses the moment of the kill; no check depends on it
            child.kill()
            printed = [int(l.split()[1]) for l in child.lines if l.startswith("committed")]
        last = printed[-1]
        with RunReader(path) as r:
            steps = r.steps()["step"]
            assert len(steps) >= last + 1 and np.array_equal(steps[: last + 1], np.arange(last + 1)), (last, len(steps))
            assert not r.finished and r.meta["arch"] == "child"
            assert r.snapshot_steps()[0] == 0
            for s in r.snapshot_steps():
                assert r.load_snapshot(s)[1]["step"] == s


def test_a_reader_follows_a_writer_in_another_process(tmp_path):
    path = tmp_path / "live.cnnviz"
    seen = []
    with Child("writer_child.py", path, "follow", 1500) as child:
        child.wait_line(lambda l: l == "ready")
        with RunReader(path) as r:
            deadline = time.monotonic() + 30
            while not r.finished and time.monotonic() < deadline:
                if r.refresh():
                    seen.append((len(r.steps()), len(r.snapshot_steps()), len(r.epochs())))
                time.sleep(0.02)         # polling interval of the follower, not a check
            assert r.finished, "the reader never saw the run close"
            steps = r.steps()
            assert np.array_equal(steps["step"], np.arange(1500))
            assert [e.epoch for e in r.epochs()] == [0, 1, 2]
            assert r.load_snapshot(1499)[0] == 1490
        child.wait_line(lambda l: l == "closed")
    counts = [n for n, _, _ in seen]
    partial = [n for n in counts if 0 < n < 1500]
    assert len(set(partial)) >= 3, seen       # it saw the run grow, not only its end
    assert counts == sorted(counts)
