"""The window's worker on its own (thread and process transport): commands in, frozen snapshots
out as Qt signals, failures reported. The engine behind it is tested without Qt in
tests/core/test_engine.py.

Every test joins the worker in teardown. Training runs on 256 digits at batch 32: a handful of steps.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from visualizer.core.config import TrainConfig
from visualizer.core.engine.messages import DataInfo, LoadedModel
from visualizer.core.snapshot import OUT_OF_MEMORY, CaptureRequest, Finished, ProbeSnapshot, TrainingSnapshot
from visualizer.core.training import Trainer
from visualizer.gui.worker import Worker

LIMIT = 256
WAIT = 20_000  # ms; generous for a busy 2-core machine


@pytest.fixture
def worker(qtbot):
    w = Worker()
    w.probe_ready.connect(lambda _s: w.probe_consumed())  # the GUI's acknowledgement
    w.start()
    yield w
    assert w.shutdown(), "worker thread did not stop"
    assert not w.is_running()


def built(qtbot, worker, **options) -> LoadedModel:
    worker.set_dataset("digits", limit=LIMIT)
    with qtbot.waitSignal(worker.model_loaded, timeout=WAIT) as sig:
        worker.build("lenet5", options)
    return sig.args[0]


def probe(qtbot, worker, request: CaptureRequest) -> ProbeSnapshot:
    # Earlier requests may still be answered first (latest wins, but one may be in flight).
    with qtbot.waitSignal(worker.probe_ready, timeout=WAIT,
                          check_params_cb=lambda s: s.request_id == request.request_id) as sig:
        worker.request_capture(request)
    return sig.args[0]


def test_build_reports_model_and_data_as_plain_data(qtbot, worker):
    with qtbot.waitSignal(worker.data_ready, timeout=WAIT) as data_sig:
        model = built(qtbot, worker)
    data: DataInfo = data_sig.args[0]
    assert model.arch == "lenet5" and len(model.class_names) == 10
    assert [layer.name for layer in model.info.layers]  # the layer table came along
    assert data.spec == "digits" and data.labels.shape == (data.n_val,)
    assert data.gallery.dtype == np.uint8 and data.gallery.shape[1:] == model.input_shape
    assert not data.gallery.flags.writeable


def test_idle_probe_answers_the_latest_request(qtbot, worker):
    built(qtbot, worker)
    snap = probe(qtbot, worker, CaptureRequest(layers=("*",), probe_index=3, request_id=7))
    assert snap.request_id == 7
    assert snap.probabilities.shape == (10,)
    assert abs(float(snap.probabilities.sum()) - 1) < 1e-4
    assert snap.layers and all(not c.maps.flags.writeable for c in snap.layers if c.maps is not None)
    # A drawn image instead of the dataset sample changes what the model sees.
    drawn = np.zeros((1, 32, 32), np.float32)
    drawn[0, 8:24, 14:18] = 1.0
    other = probe(qtbot, worker, CaptureRequest(layers=("*",), probe_input=drawn, request_id=8))
    assert np.array_equal(other.input_image, drawn)
    assert not np.array_equal(other.input_image, snap.input_image)


def test_at_most_one_training_snapshot_in_flight(qtbot, worker):
    built(qtbot, worker)
    got: list[TrainingSnapshot] = []
    worker.training_snapshot.connect(got.append)
    with qtbot.waitSignal(worker.finished, timeout=60_000) as fin:
        # Never acknowledged: the trainer must not produce a second one however fast it is.
        worker.start_training(TrainConfig(epochs=1, batch_size=32, snapshot_hz=1000))
    assert fin.args[0].reason == "completed"
    assert len(got) == 1

    got.clear()

    def acknowledge_and_step(_snap):
        worker.snapshot_consumed()
        worker.step()  # paused single steps: each acknowledged snapshot is followed by another

    worker.training_snapshot.connect(acknowledge_and_step)
    worker.start_training(TrainConfig(epochs=50, batch_size=32), paused=True, steps=1)
    qtbot.waitUntil(lambda: len(got) >= 5, timeout=WAIT)
    steps = [s.step for s in got]
    assert steps == sorted(steps) and steps[0] == 1
    with qtbot.waitSignal(worker.finished, timeout=WAIT):
        worker.stop()


def test_pause_step_resume_stop(qtbot, worker):
    built(qtbot, worker)
    snaps: list[TrainingSnapshot] = []
    worker.training_snapshot.connect(snaps.append)
    worker.training_snapshot.connect(lambda _s: worker.snapshot_consumed())
    with qtbot.waitSignal(worker.training_snapshot, timeout=WAIT):
        worker.start_training(TrainConfig(epochs=50, batch_size=32), paused=True, steps=1)
    assert snaps[-1].step == 1
    with qtbot.waitSignal(worker.training_snapshot, timeout=WAIT, check_params_cb=lambda s: s.step == 2):
        worker.step()
    worker.resume()
    qtbot.waitUntil(lambda: snaps[-1].step > 4, timeout=WAIT)
    worker.pause()
    with qtbot.waitSignal(worker.finished, timeout=WAIT) as fin:
        worker.stop()
    assert isinstance(fin.args[0], Finished) and fin.args[0].reason == "stopped"


def test_failure_is_reported_and_worker_keeps_serving(qtbot, worker):
    built(qtbot, worker)
    with qtbot.waitSignal(worker.failed, timeout=WAIT) as sig:
        worker.start_training(TrainConfig(optimizer="bogus"))
    assert "optimizer" in sig.args[0]
    assert worker.is_running()
    assert probe(qtbot, worker, CaptureRequest(layers=("*",))).probabilities.shape == (10,)


def test_out_of_memory_in_a_step_offers_a_smaller_batch(qtbot, worker, monkeypatch):
    built(qtbot, worker)

    def oom(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "_train_step", oom)
    failures: list[str] = []
    worker.failed.connect(failures.append)
    with qtbot.waitSignal(worker.finished, timeout=WAIT) as sig:
        worker.start_training(TrainConfig(batch_size=64))
    # The run ends saying why and at which batch size (the window offers half of it),
    # with no separate failure message on top.
    assert sig.args[0].reason == OUT_OF_MEMORY and sig.args[0].batch_size == 64
    assert failures == [] and worker.is_running()


def test_cuda_unavailable_falls_back_to_cpu_with_a_notice(qtbot, worker, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # also on a machine with a GPU
    built(qtbot, worker)
    notices: list[str] = []
    worker.notice.connect(notices.append)
    with qtbot.waitSignal(worker.training_snapshot, timeout=WAIT):
        worker.start_training(TrainConfig(device="cuda", epochs=5, batch_size=32))
    with qtbot.waitSignal(worker.finished, timeout=WAIT):
        worker.stop()
    assert any("CPU" in n for n in notices)


def test_probe_during_training_leaves_batchnorm_buffers_unchanged(qtbot, worker):
    built(qtbot, worker, batchnorm=True)
    worker.training_snapshot.connect(lambda _s: worker.snapshot_consumed())
    with qtbot.waitSignal(worker.training_snapshot, timeout=WAIT):
        worker.start_training(TrainConfig(epochs=50, batch_size=32), paused=True, steps=1)
    # Paused with no step credit: the model is not trained while we look at it.
    model = worker.service.engine.bundle.model
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}
    assert before
    for i in range(3):
        with qtbot.waitSignal(worker.training_snapshot, timeout=WAIT):
            worker.request_capture(CaptureRequest(layers=("*",), probe_index=i, request_id=100 + i))
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    with qtbot.waitSignal(worker.finished, timeout=WAIT):
        worker.stop()


def test_bad_file_fails_with_its_name(qtbot, worker, tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint" * 10)
    with qtbot.waitSignal(worker.failed, timeout=WAIT) as sig:
        worker.load_file(str(bad))
    assert "broken.pt" in sig.args[0]


def test_pickled_model_needs_trust(qtbot, worker, tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3)), path)
    with qtbot.waitSignal(worker.trust_required, timeout=WAIT) as sig:
        worker.load_file(str(path))
    req = sig.args[0]
    assert req.path == str(path) and len(req.info.sha256) == 64


def test_shutdown_mid_training_joins_quickly(qtbot):
    w = Worker(sample_limit=LIMIT)
    w.start()
    try:
        with qtbot.waitSignal(w.model_loaded, timeout=WAIT):
            w.load_sample()
        w.training_snapshot.connect(lambda _s: w.snapshot_consumed())
        with qtbot.waitSignal(w.training_snapshot, timeout=WAIT):
            w.start_training(TrainConfig(epochs=100, batch_size=32))
    finally:
        assert w.shutdown(10_000)
    assert not w.is_running()


GATES: dict[int, object] = {}  # outside the module: a model holding a lock cannot be deep-copied


class GatedNet(torch.nn.Module):
    """A tiny CNN whose training forward waits for the test: a "step" as slow as ResNet-18's on a CPU."""

    def __init__(self, gate):
        super().__init__()
        GATES[id(self)] = gate
        self.gate_key = id(self)
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(4 * 15 * 15, 10)

    def forward(self, x):
        if self.training and x.shape[0] > 1:
            GATES[self.gate_key].wait(60)
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


def test_views_update_during_a_slow_training_step(qtbot, worker):
    import threading

    from visualizer.core.model_bundle import ModelBundle

    gate = threading.Event()
    try:
        worker.set_side_probe_always(True)  # the model is tiny; its steps are slow only by the gate
        worker.set_dataset("digits", limit=LIMIT)
        bundle = ModelBundle(GatedNet(gate), (1, 32, 32), tuple(str(i) for i in range(10)), arch="gated")
        with qtbot.waitSignal(worker.model_loaded, timeout=WAIT):
            worker.load_bundle(bundle)
        snaps: list = []
        failures: list = []
        worker.training_snapshot.connect(snaps.append)
        worker.failed.connect(failures.append)
        with qtbot.waitSignal(worker.started_training, timeout=WAIT):
            worker.start_training(TrainConfig(epochs=1, batch_size=32))
        for i in range(5):  # layer/input changes while the first step is still running
            t0 = time.perf_counter()
            got = probe(qtbot, worker, CaptureRequest(layers=("conv",), probe_index=i, request_id=200 + i))
            assert time.perf_counter() - t0 < 1.0
            assert got.layer("conv") is not None and got.label is not None
        assert snaps == [], "the step finished early: the probes above did not test anything"
    finally:
        gate.set()
    with qtbot.waitSignal(worker.finished, timeout=WAIT):
        worker.stop()
    assert failures == []


def test_process_mode_trains_probes_fails_and_stops(qtbot):
    """The app's configuration: the same commands and signals, the core in a child process."""
    w = Worker(sample_limit=LIMIT, process=True)
    w.probe_ready.connect(lambda _s: w.probe_consumed())
    w.training_snapshot.connect(lambda _s: w.snapshot_consumed())
    w.start()
    try:
        with qtbot.waitSignal(w.model_loaded, timeout=60_000) as loaded:
            w.load_sample()
        assert loaded.args[0].info.layers
        snap = probe(qtbot, w, CaptureRequest(layers=("*",), request_id=11))
        assert not snap.probabilities.flags.writeable  # read-only again after pickling
        with qtbot.waitSignal(w.failed, timeout=WAIT) as bad:
            w.start_training(TrainConfig(optimizer="bogus"))
        assert "optimizer" in bad.args[0]
        with qtbot.waitSignal(w.training_snapshot, timeout=WAIT):
            w.start_training(TrainConfig(epochs=1000, batch_size=32))
        with qtbot.waitSignal(w.finished, timeout=WAIT) as fin:
            w.stop()
        assert fin.args[0].reason == "stopped"
        with qtbot.waitSignal(w.training_snapshot, timeout=WAIT):
            w.start_training(TrainConfig(epochs=1000, batch_size=32))
    finally:
        assert w.shutdown(10_000)  # mid-training
    assert not w.is_running()


def test_closing_mid_training_ends_the_run_without_waiting_for_the_snapshot_in_flight(qtbot):
    """A closing window never takes the snapshot in flight: on quit the run ends at once, instead of
    waiting a second for it (which, with the process's own teardown, took the engine past its
    2.5 s grace on a busy machine, and it was terminated). The child then exits by itself."""
    w = Worker(sample_limit=LIMIT, process=True)
    finished_at = []
    deliver = w._host._on_event      # the reader thread's hand-over: when the child said it

    def on_event(name, payload):
        if name == "finished":
            finished_at.append(time.perf_counter())
        deliver(name, payload)

    w._host._on_event = on_event
    w.start()
    try:
        with qtbot.waitSignal(w.model_loaded, timeout=60_000):
            w.load_sample()
        with qtbot.waitSignal(w.training_snapshot, timeout=WAIT):    # never consumed, as when closing
            w.start_training(TrainConfig(epochs=1000, batch_size=32))
        w.stop()                 # what closing the window does first, then the engine's quit
        t0 = time.perf_counter()
    finally:
        assert w.shutdown(10_000)
    assert finished_at and finished_at[0] - t0 < 0.9      # the wait alone was 1.0 s
    assert w._host._proc.exitcode == 0                    # ended by itself, not terminated


def test_a_failed_run_ends_with_finished_failed(qtbot, worker):
    built(qtbot, worker)
    seen: list = []
    worker.failed.connect(lambda text: seen.append(("failed", text)))
    worker.finished.connect(lambda ev: seen.append(("finished", ev)))
    worker.start_training(TrainConfig(optimizer="bogus"))
    qtbot.waitUntil(lambda: len(seen) >= 2, timeout=WAIT)
    fin = seen[-1][1]
    assert fin.reason == "failed"
    assert [name for name, _ in seen] == ["failed", "finished"]  # the message first, then the run's end


def test_user_model_file_opens_with_the_dataset_class_names(qtbot, worker, tmp_path):
    built(qtbot, worker)
    f = tmp_path / "net.py"
    f.write_text("import torch.nn as nn, torch.nn.functional as F\n"
                 "class Net(nn.Module):\n"
                 "    def __init__(self):\n"
                 "        super().__init__(); self.conv = nn.Conv2d(1, 4, 3); self.fc = nn.Linear(4, 10)\n"
                 "    def forward(self, x):\n"
                 "        return self.fc(F.relu(self.conv(x)).mean((2, 3)))\n")
    with qtbot.waitSignal(worker.model_loaded, timeout=WAIT) as sig:
        worker.load_user_model(f"{f}:Net")
    model = sig.args[0]
    assert model.arch == f"{f}:Net" and model.input_shape[0] == 1
    assert len(model.class_names) == 10
    assert any(layer.functional for layer in model.info.layers)   # F.relu inside forward is listed
