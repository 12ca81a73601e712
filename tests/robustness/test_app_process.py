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


def test_the_window_is_visible_within_3_seconds(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CNN_VISUALIZER_CONFIG_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "visualizer", "--quit-after", "0.5"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    line = next(ln for ln in r.stderr.splitlines() if "window shown" in ln)
    seconds = float(line.split("window shown")[1].split()[0])
    assert seconds < 3.0, line
