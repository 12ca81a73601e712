"""A crash of the whole app loses at most one epoch: SIGKILL the app mid-run, start it again, and it
offers the interrupted run; resumed, the run ends with exactly the weights of a run never interrupted.

Real processes throughout: the app killed is a real ``cnn-visualizer --train``; the app resuming is a
real window with its worker in a child process; the reference is another real app, let run to its end.
The runs are the app's own set-up (the sample model on its MNIST digits, augmented), 4 epochs.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import torch

from visualizer.core.engine import autosave
from visualizer.gui.controller import Controller
from visualizer.gui.main_window import MainWindow
from visualizer.gui.recovery import RESUME
from visualizer.gui.settings import Settings

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 4
OPTIONS = {"epochs": EPOCHS, "batch_size": 128, "rotation": 10.0, "translation": 0.1, "seed": 5}


def settings_in(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    s = Settings(folder / "settings.ini")
    s.set_last_options(OPTIONS)
    s.sync()
    return folder


def app(config: Path, data: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CNN_VISUALIZER_CONFIG_DIR=str(config),
               CNN_VISUALIZER_DATA_DIR=str(data))
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "visualizer", "--train", "--quit-after", "300"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)


def records(data: Path) -> list[autosave.AutosaveRecord]:
    return [r for r in (autosave.read_record(p) for p in (data / "autosave").glob("*.json")) if r is not None]


def wait_record(proc, log: Path, data: Path, done, timeout: float = 240) -> autosave.AutosaveRecord:
    deadline = time.monotonic() + timeout
    while True:
        recs = [r for r in records(data) if done(r)]
        if recs:
            return recs[0]
        assert proc is None or proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:] if log.exists() else "timed out"
        time.sleep(0.02)


def weights(checkpoint: str) -> dict:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def test_sigkill_the_app_mid_run_then_resume_bit_identically(qtbot, tmp_path, monkeypatch):
    data = tmp_path / "data"
    config = settings_in(tmp_path / "config")

    # 1. The app trains; two epochs in, it is killed outright.
    log = tmp_path / "killed.log"
    killed = app(config, data, log)
    try:
        wait_record(killed, log, data, lambda r: r.saved and r.epoch >= 1 and r.state == autosave.RUNNING)
        worker = [p for p in psutil.Process(killed.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(30) == -signal.SIGKILL
        psutil.wait_procs(worker, timeout=20)   # the orphaned worker stops by itself and says so
    finally:
        if killed.poll() is None:
            killed.kill()
    (rec,) = autosave.interrupted_runs(data / "autosave")
    print(f"killed at epoch {rec.epoch}, step {rec.step}, autosave state {rec.state}")
    assert rec.epoch >= 1 and rec.epochs == EPOCHS and 0 < rec.step < EPOCHS * 71
    # At most one epoch lost: the worker saved where it stopped (or, killed with it, the last epoch end).
    assert rec.state in (autosave.INTERRUPTED, autosave.RUNNING)

    # 2. The next start offers it; resumed, it runs to its end in the new window.
    monkeypatch.setenv("CNN_VISUALIZER_DATA_DIR", str(data))
    monkeypatch.setenv("CNN_VISUALIZER_CONFIG_DIR", str(config))
    settings = Settings(config / "settings.ini")
    controller = Controller(settings, process=True)
    w = MainWindow(settings, controller=controller)
    offers: list = []
    w.recovery.ask_resume = lambda record, reply: offers.append((record, reply))
    ended: list = []
    controller.run_ended.connect(ended.append)
    qtbot.addWidget(w)
    w.show()
    try:
        w.start()
        qtbot.waitUntil(lambda: len(offers) == 1, timeout=120_000)
        offered, reply = offers[0]
        assert offered.run_id == rec.run_id and offered.step == rec.step
        reply(RESUME)
        qtbot.waitUntil(lambda: bool(ended), timeout=240_000)
        assert ended[0].reason == "completed" and ended[0].epoch == EPOCHS
        # The last autosave follows the run's end (it is written on the autosave's own thread).
        final = wait_record(None, tmp_path / "none", data, lambda r: r.run_id == rec.run_id
                            and r.state == autosave.COMPLETED, timeout=30)
        assert final.epoch == EPOCHS
        resumed = weights(final.checkpoint)
        assert autosave.interrupted_runs(data / "autosave") == []   # a run that ended is not offered again
        assert w.recovery.interrupted() == []
    finally:
        w.close()

    # 3. The same run, never interrupted.
    ref_data = tmp_path / "reference-data"
    ref_config = tmp_path / "reference-config"
    shutil.copytree(tmp_path / "config", ref_config)
    log = tmp_path / "reference.log"
    reference = app(ref_config, ref_data, log)
    try:
        done = wait_record(reference, log, ref_data, lambda r: r.state == autosave.COMPLETED)
        reference.send_signal(signal.SIGTERM)
        reference.wait(30)
    finally:
        if reference.poll() is None:
            reference.kill()
    assert done.step == final.step
    expected = weights(done.checkpoint)
    assert resumed.keys() == expected.keys()
    different = [k for k in expected if not torch.equal(expected[k], resumed[k])]
    assert different == [], different
