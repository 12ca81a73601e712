"""SIGTERM ends the real app within 5 s in every state: idle, training, a user model stuck in its
forward, a modal dialog open. The worker process goes with it. Real processes, real signals."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
STUCK_NET = """
import sys
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        if self.training and x.shape[0] > 1:
            print("stuck in forward", file=sys.stderr, flush=True)
            while True:
                pass
        return self.fc(self.conv(x).mean((2, 3)))
"""


def start_app(tmp_path, *args) -> tuple[subprocess.Popen, Path]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CNN_VISUALIZER_CONFIG_DIR=str(tmp_path / "config"),
               CNN_VISUALIZER_DATA_DIR=str(tmp_path / "data"))
    log = tmp_path / "app.log"
    with open(log, "w") as out:   # a file, not a pipe: nothing blocks on a full pipe
        app = subprocess.Popen([sys.executable, "-m", "visualizer", *args, "--quit-after", "120"],
                               stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    return app, log


def wait_for(app, log: Path, marker: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while marker not in log.read_text():
        assert app.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)


def workers(app) -> list[psutil.Process]:
    found = []
    for p in psutil.Process(app.pid).children():
        try:
            if "spawn_main" in " ".join(p.cmdline()):
                found.append(p)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue   # a child that has just ended (not yet reaped) has no command line to read
    return found


def pickled_model(tmp_path) -> str:
    path = tmp_path / "whole.pt"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3)), path)
    return str(path)


@pytest.mark.parametrize("state", ["idle", "training", "stuck in forward", "dialog open"])
def test_sigterm_ends_the_app_within_5_seconds(tmp_path, state):
    if state == "idle":
        app, log = start_app(tmp_path)
        marker = "window shown"
    elif state == "training":
        app, log = start_app(tmp_path, "--train")
        marker = "training: first snapshot"
    elif state == "stuck in forward":
        net = tmp_path / "stuck_net.py"
        net.write_text(STUCK_NET)
        app, log = start_app(tmp_path, f"{net}:Net", "--train")
        marker = "stuck in forward"
    else:   # a whole pickled model: the trust dialog is modal (its own event loop)
        app, log = start_app(tmp_path, pickled_model(tmp_path))
        marker = "asking whether to trust"
    try:
        wait_for(app, log, marker)
        if state == "idle":
            deadline = time.monotonic() + 60
            while not workers(app) and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
        children = workers(app)
        assert len(children) == 1, log.read_text()[-2000:]
        t0 = time.monotonic()
        app.send_signal(signal.SIGTERM)
        rc = app.wait(timeout=30)
        took = time.monotonic() - t0
        gone, alive = psutil.wait_procs(children, timeout=1.0)
        print(f"{state}: exited {rc} {took:.2f} s after SIGTERM")
        assert took < 5.0, (took, log.read_text()[-3000:])
        assert rc == 0, log.read_text()[-3000:]
        assert not alive, "the worker process outlived the app"
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
