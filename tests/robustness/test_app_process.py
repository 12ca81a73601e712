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
