"""A model file that calls sys.exit() is an error naming the file on the command line: exit 2 and one
line, never a silent exit with the model's own code (0 for a bare ``sys.exit()``). Also ``train --run``."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from visualizer.core.record.runfile import RunReader

REPO = Path(__file__).resolve().parents[1]
NET = """
import sys
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        {init}
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        {forward}
        return self.fc(self.conv(x).mean((2, 3)))
"""


def cli(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "visualizer", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))


@pytest.mark.parametrize("where,code", [("init", ""), ("init", "3"), ("forward", ""), ("forward", "'bye'")])
@pytest.mark.parametrize("command", ["info", "health"])
def test_sys_exit_in_a_model_is_one_line_naming_the_file_and_exit_2(tmp_path, where, code, command):
    call = f"sys.exit({code})"
    path = tmp_path / "net.py"
    path.write_text(NET.format(init=call if where == "init" else "pass",
                               forward=call if where == "forward" else "pass"))
    extra = ["--dataset", "digits", "--samples", "256"] if command == "health" else []
    r = cli(command, f"{path}:Net", *extra)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert str(path) in lines[0] and f"sys.exit({code})" in lines[0], lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_train_records_its_run_when_asked(tmp_path):
    run = tmp_path / "run.cnnviz"
    r = cli("train", "--arch", "lenet5", "--dataset", "digits", "--limit", "256", "--epochs", "2",
            "--batch-size", "32", "--quiet", "--out", str(tmp_path / "m.pt"), "--run", str(run))
    assert r.returncode == 0, r.stderr
    with RunReader(run) as reader:
        assert len(reader.steps()) == 2 * 8 and [e.epoch for e in reader.epochs()] == [0, 1]
        assert reader.finished and reader.model_info is not None
    again = cli("train", "--epochs", "1", "--limit", "64", "--quiet", "--out", str(tmp_path / "n.pt"),
                "--run", str(run))
    assert again.returncode == 2 and "already exists" in again.stderr and str(run) in again.stderr
    assert textwrap.dedent(again.stderr).count("\n") == 1
