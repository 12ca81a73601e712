"""The real app in a real X window (Xvfb): it trains, draws and is not blank.

Runs the app as a subprocess with ``--train`` on a private Xvfb display, waits
for its "first snapshot" log line, lets a separate process grab the screen a
few seconds later and once more a second after that, checks the picture has
many distinct colours and that the views changed between the two grabs (they
update by themselves while training), then closes the app with SIGTERM and
expects a clean exit (worker stopped and joined).
Skipped where Xvfb is not installed, except in CI, where that fails (tests/prerequisites.py).
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.prerequisites import missing

pytestmark = [pytest.mark.xvfb, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
GRAB = """
import sys
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
def grab(path, last):
    ok = app.primaryScreen().grabWindow(0).save(path)
    if not ok or last:
        app.exit(0 if ok else 1)
delay = int(float(sys.argv[3]) * 1000)  # a few seconds of training first
QTimer.singleShot(delay, lambda: grab(sys.argv[1], False))
QTimer.singleShot(delay + 1000, lambda: grab(sys.argv[2], True))   # and the same screen a second later
sys.exit(app.exec())
"""


def read_until(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    """Read the process's output until ``needle`` appears (select-based, no sleeping)."""
    seen = ""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise AssertionError(f"{needle!r} not seen; output so far:\n{seen[-3000:]}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536).decode(errors="replace")
            if not chunk:
                raise AssertionError(f"output ended before {needle!r}:\n{seen[-3000:]}")
            seen += chunk
    return seen


@pytest.fixture
def xdisplay():
    if shutil.which("Xvfb") is None:
        missing("Xvfb is not installed")
    r, w = os.pipe()
    # -displayfd: Xvfb picks a free display and writes its number once it accepts clients.
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1400x900x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 20)
        number = os.read(r, 64).decode().strip() if ready else ""
        if not number:
            missing("Xvfb did not start")
        yield f":{number}"
    finally:
        os.close(r)
        xvfb.terminate()
        xvfb.wait(10)


def test_real_window_while_training_is_not_blank(xdisplay, tmp_path):
    env = dict(os.environ, DISPLAY=xdisplay, QT_QPA_PLATFORM="xcb", CNN_VISUALIZER_CONFIG_DIR=str(tmp_path),
               PYTHONUNBUFFERED="1")
    app = subprocess.Popen(
        [sys.executable, "-c", "from visualizer.cli import main; raise SystemExit(main(['--train']))"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        read_until(app, "first snapshot", timeout=60)
        shot, later = tmp_path / "screen.png", tmp_path / "screen_1s_later.png"
        grab = subprocess.run([sys.executable, "-c", GRAB, str(shot), str(later), "3"], env=env, timeout=60,
                              capture_output=True, text=True)
        assert grab.returncode == 0, grab.stderr
        assert app.poll() is None, "the app died while training"
    finally:
        if app.poll() is None:
            app.send_signal(signal.SIGTERM)
        try:
            rc = app.wait(30)
        except subprocess.TimeoutExpired:
            app.kill()
            rc = app.wait()
        rest = app.stdout.read().decode(errors="replace")
        app.stdout.close()
    assert rc == 0, f"exit status {rc}:\n{rest[-3000:]}"
    assert "QThread: Destroyed" not in rest

    from PIL import Image
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[0] >= 600 and img.shape[1] >= 800
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) > 300, f"only {len(colours)} distinct colours: the window looks blank"
    assert float(img.std()) > 20, "the screen is nearly uniform"
    # The window itself (not just the empty screen behind it) has content in its middle.
    h, w = img.shape[:2]
    middle = img[h // 4: 3 * h // 4, w // 4: 3 * w // 4]
    assert len(np.unique(middle.reshape(-1, 3), axis=0)) > 100
    # Live: the views in the middle (feature maps on top) changed by themselves within a second.
    # The status bar and the side panels are outside this region.
    region = (slice(h // 6, h // 2), slice(3 * w // 10, 7 * w // 10))
    before = img[region].astype(np.int16)
    after = np.asarray(Image.open(later).convert("RGB"))[region].astype(np.int16)
    changed = float((np.abs(after - before).max(axis=2) > 0).mean())
    assert changed > 0.005, f"only {changed:.2%} of the feature-map region changed in a second of training"
