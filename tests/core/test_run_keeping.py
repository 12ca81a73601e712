"""The engine keeps the runs it trains (no Qt, no threads of ours): a run file of every run, and an
autosave that a crash costs at most one epoch of and that resumes bit-identically.

Training runs on 256 samples of the sample data set at batch 32 (8 steps an epoch); the data folder is the suite's
temporary one (conftest sets CNN_VISUALIZER_DATA_DIR).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from visualizer.core.config import TrainConfig
from visualizer.core.engine import autosave
from visualizer.core.engine.engine import Engine
from visualizer.core.engine.run_keeper import RUN_FILE_SNAPSHOTS_PER_S
from visualizer.core.record.runfile import RunReader
from visualizer.core.resources import SAMPLE_DATASET
from visualizer.core.snapshot import EpochEnd, Finished, TrainingSnapshot
from visualizer.core.training import TrainingControl
from visualizer.core.user_dirs import autosave_dir, runs_dir

LIMIT = 256
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def keeping_engine(events: list, control_box: list):
    """An engine as the app's (keep_runs) whose viewer takes every snapshot at once."""
    def emit(name, payload):
        events.append((name, payload))
        if name == "training_snapshot" and control_box:
            control_box[0].snapshot_consumed()
    engine = Engine(emit, sample_limit=LIMIT, keep_runs=True)
    engine.load_sample()
    return engine


def train(engine, config, control_box, **kwargs):
    control = TrainingControl()
    control_box[:] = [control]
    engine.train(config, control, **kwargs)
    return control


def weights(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_every_run_is_recorded_to_a_run_file_the_reader_opens(tmp_path):
    events, box = [], []
    engine = keeping_engine(events, box)
    try:
        train(engine, TrainConfig(epochs=2, batch_size=32, snapshot_hz=1000), box)
        started = [p for n, p in events if n == "run_started"]
        assert len(started) == 1
        path = started[0].run_file
        assert path is not None and os.path.dirname(path) == str(runs_dir()) and path.endswith(".cnnviz")
        snaps = [p for n, p in events if n == "training_snapshot"]
        fin = [p for n, p in events if n == "finished"][-1]
        assert fin.reason == "completed" and fin.step == 16
    finally:
        engine.close()
    with RunReader(path) as run:
        steps = run.steps()
        assert list(steps["step"]) == list(range(1, 17))          # every step's scalars
        assert list(steps["epoch"]) == [0] * 8 + [1] * 8
        assert float(steps["lr"][0]) == 0.01 and all(0 <= a <= 1 for a in steps["accuracy"])
        assert [e.epoch for e in run.epochs()] == [0, 1]
        assert [(e.kind, e.text) for e in run.events()] == [("finished", "completed")]
        assert run.finished
        opened = next(p for n, p in events if n == "model_loaded")
        assert [layer.name for layer in run.model_info.layers] == [layer.name for layer in opened.info.layers]
        assert tuple(run.meta["class_names"]) == tuple(str(i) for i in range(10))
        assert run.meta["source"] == "app" and run.meta["dataset"] == SAMPLE_DATASET
        stored = run.snapshot_steps()
        assert len(stored) >= 2 and set(stored) <= {s.step for s in snaps}   # the trainer's own snapshots
        step, snap = run.load_snapshot(int(stored[-1]))
        assert isinstance(snap, TrainingSnapshot) and snap.step == step and snap.probe.probabilities.shape == (10,)


def test_the_run_writers_encoding_is_counted_by_the_trainers_pacer():
    seen: list[float] = []
    box: list = []

    def emit(name, payload):
        if name == "training_snapshot":
            cost = engine.trainer.background_cost
            seen.append(cost() if cost is not None else -1.0)
            box[0].snapshot_consumed()
    engine = Engine(emit, sample_limit=LIMIT, keep_runs=True)
    engine.load_sample()
    try:
        # a budget of 100%: snapshots as often as they come, whatever they cost
        train(engine, TrainConfig(epochs=3, batch_size=32, snapshot_hz=1000, instrumentation_budget=1.0), box)
    finally:
        engine.close()
    assert len(seen) >= 3 and -1.0 not in seen
    assert max(seen) > 0         # CPU seconds the writer's thread spent encoding the earlier snapshots


def test_the_run_file_gets_a_few_snapshots_a_second_and_the_last_of_every_epoch():
    events, box = [], []
    engine = keeping_engine(events, box)
    try:
        # 100% budget: snapshots as often as the trainer can make them, far more than the run file takes
        train(engine, TrainConfig(epochs=3, batch_size=32, snapshot_hz=1000, instrumentation_budget=1.0,
                                  max_steps_per_sec=40), box)
    finally:
        engine.close()
    path = next(p for n, p in events if n == "run_started").run_file
    made = [p.step for n, p in events if n == "training_snapshot"]
    ends = [p.step for n, p in events if n == "epoch_end"]
    with RunReader(path) as run:
        stored = [int(s) for s in run.snapshot_steps()]
        seconds = float(run.steps()["wall"][-1] - run.steps()["wall"][0])
    assert len(made) >= 15 and ends == [8, 16, 24]
    assert set(stored) <= set(made) and stored[0] == made[0]
    assert len(stored) <= RUN_FILE_SNAPSHOTS_PER_S * seconds + 1 + len(ends) + 1 < len(made)
    for end in ends:                                    # the last snapshot before each epoch end is kept
        assert max(s for s in made if s <= end) in stored


def test_a_snapshot_dear_to_encode_is_recorded_within_half_the_budget(monkeypatch):
    from visualizer.core.engine import run_keeper

    class Writer:                       # a run writer whose encoding costs 50 ms of CPU a snapshot
        encode_cost = 0.05

        def __init__(self):
            self.steps = []

        def append_snapshot(self, step, epoch, record):
            self.steps.append(step)

        def append_epoch(self, *args):
            pass

    class Trainer:
        config = TrainConfig(instrumentation_budget=0.01)
        background_cost = None

    clock = [100.0]
    monkeypatch.setattr(run_keeper.time, "monotonic", lambda: clock[0])
    keeper = run_keeper.RunKeeper(Trainer(), checkpoint=lambda: None, meta={}, emit=lambda *a: None,
                                  autosave_dir=None, runs_dir=None)
    keeper.writer = Writer()
    snaps = [TrainingSnapshot(step=i, epoch=0, batch=i, batches_per_epoch=100, total_steps=100, loss=1.0,
                              accuracy=0.5, lr=0.1, samples_per_sec=1.0, history=None, gradients=(), probe=None)
             for i in range(40)]
    for snap in snaps:                  # one every half second for 20 s
        keeper.event(snap)
        clock[0] += 0.5
    # 50 ms within half of 1%: one every 10 s (not every second), the first at once
    assert keeper.writer.steps == [0, 20]
    keeper.event(EpochEnd(epoch=0, step=39, train_loss=1.0, train_accuracy=0.5, val_loss=None, val_accuracy=None))
    assert keeper.writer.steps == [0, 20, 39]           # the last before the epoch end
    assert keeper._encoding_cost() == pytest.approx(0.05 * 2 / 40)   # the pacer: 2 of the 40 recorded


def test_a_diverged_run_is_recorded_as_diverged():
    events, box = [], []
    engine = keeping_engine(events, box)
    try:
        train(engine, TrainConfig(epochs=3, batch_size=32, lr=1e6, momentum=0.0, snapshot_hz=0), box)
        path = next(p for n, p in events if n == "run_started").run_file
    finally:
        engine.close()
    with RunReader(path) as run:
        kinds = [e.kind for e in run.events()]
        assert kinds == ["diverged"] and "lower learning rate" in run.events()[0].text
    rec = autosave.interrupted_runs(autosave_dir())
    assert rec == []   # a diverged run ended: it is not offered


def test_the_autosave_follows_every_epoch_and_a_completed_run_is_not_offered():
    events, box = [], []
    engine = keeping_engine(events, box)
    seen: list[tuple[int, str]] = []
    folder = autosave_dir()

    def watch_saves(step, loss, acc):
        # Epoch k ends at step 8k; its autosave is queued at step 8k + 1 and written on the autosave's
        # own thread: by the next step or so it must be on disk (waited for here, in the training thread).
        if step % 8 == 2 and step > 8:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                recs = [autosave.read_record(p) for p in folder.glob("*.json")]
                if recs and recs[0].saved and recs[0].epoch == step // 8:
                    seen.append((recs[0].epoch, recs[0].step, recs[0].state))
                    return
                time.sleep(0.01)

    try:
        train(engine, TrainConfig(epochs=3, batch_size=32, snapshot_hz=0), box, on_step=watch_saves)
    finally:
        engine.close()
    (rec,) = [autosave.read_record(p) for p in folder.glob("*.json")]
    assert rec.state == autosave.COMPLETED and rec.epoch == 3 and rec.step == 24 and rec.epochs == 3
    assert seen == [(1, 9, autosave.RUNNING), (2, 17, autosave.RUNNING)]   # at the first step after each epoch
    assert autosave.interrupted_runs(folder) == []
    ck = torch.load(rec.checkpoint, weights_only=True)
    assert ck["training"]["step"] == 24 and ck["meta"]["run_id"] == rec.run_id


def test_a_run_interrupted_mid_epoch_resumes_bit_identically_from_its_autosave():
    config = TrainConfig(epochs=3, batch_size=32, snapshot_hz=0, seed=3)
    events, box = [], []
    reference = keeping_engine(events, box)
    try:
        train(reference, config, box)
        expected = weights(reference.bundle.model)
    finally:
        reference.close()

    # The same run, its viewer "dies" in epoch 2: the engine stops and marks the run interrupted.
    events, box = [], []
    engine = keeping_engine(events, box)

    def die_at_step_13(step, loss, acc):
        if step == 13:
            engine.interrupted = True
            box[0].stop()

    try:
        train(engine, config, box, on_step=die_at_step_13)
    finally:
        engine.close()
    (rec,) = [r for r in autosave.interrupted_runs(autosave_dir())]
    assert rec.state == autosave.INTERRUPTED and rec.step == 13 and rec.epoch == 1

    # A fresh engine (the next start) resumes it and trains to the end: the very same weights.
    events, box = [], []
    resumed = keeping_engine(events, box)
    try:
        cfg, state = resumed.load_resumable(rec.checkpoint)
        assert cfg.epochs == 3 and cfg.seed == 3 and state["step"] == 13
        train(resumed, cfg, box, resume_state=state)
        got = weights(resumed.bundle.model)
        start = next(p for n, p in events if n == "run_started")
        assert start.resumed_from_step == 13
        assert [p.epoch for n, p in events if isinstance(p, EpochEnd)] == [1, 2]   # no epoch replayed
        assert [p.reason for n, p in events if isinstance(p, Finished)] == ["completed"]
    finally:
        resumed.close()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    final = autosave.read_record(autosave.record_path(autosave_dir(), rec.run_id))
    assert final.state == autosave.COMPLETED and final.step == 24   # the same run, continued
    assert autosave.interrupted_runs(autosave_dir()) == []


LIVE_RUN = r"""
import sys, time
from visualizer.core.engine.autosave import AutosaveRecord, RunAutosave
rec = AutosaveRecord(run_id="live", checkpoint=sys.argv[1] + "/live.pt", saved=0.0)
saver = RunAutosave(sys.argv[1], rec)
saver.save(lambda p: open(p, "wb").write(b"x"), state="running", step=5, epoch=1)
time.sleep(0.5)
print("saved", flush=True)
time.sleep(60)
"""


def test_a_run_whose_engine_lives_is_not_offered_and_one_whose_engine_died_is(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", LIVE_RUN, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             cwd=REPO)
    try:
        assert child.stdout.readline().strip() == "saved"
        assert autosave.read_record(tmp_path / "live.json").step == 5
        assert autosave.is_live(tmp_path, "live")
        assert autosave.interrupted_runs(tmp_path) == []      # another window trains it
    finally:
        child.kill()
        child.wait(10)
    deadline = time.monotonic() + 5
    while autosave.is_live(tmp_path, "live") and time.monotonic() < deadline:
        time.sleep(0.05)
    (rec,) = autosave.interrupted_runs(tmp_path)               # its lock died with it
    assert rec.run_id == "live" and rec.state == autosave.RUNNING
    autosave.mark(tmp_path, rec, autosave.DISMISSED)
    assert autosave.interrupted_runs(tmp_path) == []


def test_only_the_most_recent_runs_keep_their_autosaves(tmp_path):
    for i in range(autosave.KEEP_RUNS + 3):
        rec = autosave.AutosaveRecord(run_id=f"run{i:02d}", checkpoint=str(tmp_path / f"run{i:02d}.pt"),
                                      started=1000.0 + i, saved=1000.0 + i)
        (tmp_path / f"run{i:02d}.pt").write_bytes(b"x")
        saver = autosave.RunAutosave(tmp_path, rec)   # each new run prunes the old ones
        saver.close()
    kept = sorted(p.stem for p in tmp_path.glob("*.pt"))
    assert kept == [f"run{i:02d}" for i in range(3, autosave.KEEP_RUNS + 3)]
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == kept
