"""The real entry point: closing mid-training exits 0, with no Qt abort, for both worker modes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("mode", [[], ["--thread-worker"]], ids=["process-worker", "thread-worker"])
def test_closing_the_window_mid_training_exits_cleanly(tmp_path, mode):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CNN_VISUALIZER_CONFIG_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "visualizer", "--train", "--quit-after", "8", *mode],
                       capture_output=True, text=True, timeout=180, env=env, cwd=REPO)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-3000:]
    assert "first snapshot" in log, log[-3000:]          # it really was training when closed
    assert "QThread: Destroyed" not in log and "Traceback" not in log, log[-3000:]
    # The engine stopped by itself (it was terminated after a second's wait for a final snapshot),
    # and the exit left nothing for multiprocessing's resource tracker to warn about.
    assert "did not stop in time" not in log and "leaked semaphore" not in log, log[-3000:]


def test_the_window_is_visible_within_3_seconds(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CNN_VISUALIZER_CONFIG_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "visualizer", "--quit-after", "0.5"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    line = next(ln for ln in r.stderr.splitlines() if "window shown" in ln)
    seconds = float(line.split("window shown")[1].split()[0])
    assert seconds < 3.0, line


def test_a_worker_whose_gui_was_killed_stops(tmp_path):
    # SIGKILL (or a crash) gives the GUI no chance to stop its worker process: the worker must
    # notice on its own, not train on, orphaned, at full speed.
    import psutil
    script = r"""
import os, signal, sys, time
from PyQt6.QtCore import QCoreApplication
from visualizer.core.config import TrainConfig
from visualizer.gui.worker import Worker
app = QCoreApplication([])
w = Worker(process=True, sample_limit=256)
started = []
w.started_training.connect(lambda: started.append(1))
w.start()
w.load_sample()
w.start_training(TrainConfig(epochs=10_000, batch_size=32))
end = time.time() + 90
while not started and time.time() < end:
    app.processEvents()
    time.sleep(0.01)
print(w.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CNN_VISUALIZER_CONFIG_DIR=str(tmp_path))
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as o, open(err, "w") as e:   # files, not pipes: an orphan would hold a pipe open
        gui = subprocess.Popen([sys.executable, "-c", script], stdout=o, stderr=e, env=env, cwd=REPO)
        assert gui.wait(timeout=180) == -9, err.read_text()[-2000:]
    child = int(out.read_text().split()[0])
    try:
        proc = psutil.Process(child)
    except psutil.NoSuchProcess:
        return   # already gone
    try:
        proc.wait(timeout=20)
    except psutil.TimeoutExpired:
        proc.kill()
        pytest.fail("the worker process kept running after its GUI was killed")
