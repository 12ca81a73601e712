"""The two processes of the app keep to their sides: the window never loads torch, the engine never Qt.

Checked on the running app (what the processes have really mapped into memory while
training) and on the modules themselves (what importing them pulls in). The third rule,
"core imports no Qt", is tests/core/test_qt_free.py.
"""
from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys
import time

import psutil

REPO = pathlib.Path(__file__).resolve().parents[1]
GUI = REPO / "visualizer" / "gui"


def _mapped(pid: int, fragment: str) -> bool:
    """Whether process ``pid`` has a shared library whose path contains ``fragment`` mapped."""
    with open(f"/proc/{pid}/maps") as f:
        return any(fragment in line for line in f)


def test_while_training_the_window_has_no_torch_and_the_worker_no_qt(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CNN_VISUALIZER_CONFIG_DIR=str(tmp_path))
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        app = subprocess.Popen([sys.executable, "-m", "visualizer", "--train", "--quit-after", "60"],
                               stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 90
        while "training: first snapshot" not in log.read_text():   # a snapshot has crossed to the window
            assert app.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        workers = [p for p in psutil.Process(app.pid).children()
                   if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 1, [p.cmdline() for p in psutil.Process(app.pid).children()]
        worker = workers[0].pid
        assert _mapped(app.pid, "libQt6Core") and _mapped(worker, "libtorch")   # the check can see both
        assert not _mapped(app.pid, "libtorch"), "the window's process loaded torch"
        assert not _mapped(worker, "libQt6"), "the training process loaded Qt"
    finally:
        app.terminate()
        app.wait(30)


def test_importing_every_gui_module_loads_no_torch():
    mods = [".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            for p in sorted(GUI.rglob("*.py"))]
    code = ("import sys, importlib\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnxruntime'))\n"
            "print(bad[:5]); sys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, QT_QPA_PLATFORM="offscreen"), cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_gui_file_imports_torch():
    bad = []
    for path in sorted(GUI.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bad += [(str(path.relative_to(REPO)), n) for n in names if n.split(".")[0] == "torch"]
    assert bad == []
