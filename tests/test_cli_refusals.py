"""Wrong command lines are refused with one line and exit status 2, before anything slow happens."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from visualizer import __version__
from visualizer.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_app(args: list[str], **env_changes) -> subprocess.CompletedProcess:
    """``python -m visualizer ARGS`` as a user starts it; ``None`` removes a variable."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    # --quit-after: if a check were missing the window would open; it must not hang the suite.
    return subprocess.run([sys.executable, "-m", "visualizer", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=REPO)


@pytest.mark.parametrize("flags, words", [
    (["--grad-clip", "-1"], "gradient clipping"),
    (["--grad-clip", "nan"], "gradient clipping"),
    (["--grad-clip", "inf"], "gradient clipping"),
    (["--momentum", "-0.1"], "momentum"),
    (["--momentum", "inf"], "momentum"),
    (["--weight-decay", "-0.001"], "weight decay"),
    (["--weight-decay", "nan"], "weight decay"),
    (["--seed", "-1"], "seed"),
    (["--seed", str(2**40)], "seed"),
])
def test_impossible_training_flags_are_one_line_and_exit_2(tmp_path, capsys, flags, words):
    out = tmp_path / "run.pt"
    rc = main(["train", "--epochs", "1", "--quiet", "--out", str(out), *flags])
    captured = capsys.readouterr()
    assert rc == 2
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("cnn-visualizer train: error: ") and words in line and flags[1] in line
    assert not out.exists() and "epoch" not in captured.out


def test_a_mistyped_subcommand_is_one_line_with_a_suggestion():
    r = run_app(["trian", "--epochs", "1"], QT_QPA_PLATFORM="offscreen")
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert "'trian' is not a command or a file" in line and "did you mean 'train'" in line


def test_version_prints_the_version_without_a_display():
    r = run_app(["--version"], DISPLAY=None, WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)
    assert r.returncode == 0 and r.stdout.strip() == f"cnn-visualizer {__version__}" and r.stderr == ""
    assert main(["-V"]) == 0


def test_the_gui_without_a_display_says_so_and_exits_2():
    r = run_app(["--quit-after", "1"], DISPLAY=None, WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)
    assert r.returncode == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert "no display found" in line and "QT_QPA_PLATFORM=offscreen" in line and "train" in line


def test_the_gui_with_a_display_nobody_serves_says_so_and_exits_2():
    free = next(n for n in range(97, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    r = run_app(["--quit-after", "1"], DISPLAY=f":{free}", WAYLAND_DISPLAY=None, QT_QPA_PLATFORM=None)
    assert r.returncode == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert f"cannot connect to the display ':{free}'" in line
