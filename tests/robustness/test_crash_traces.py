"""A native crash in the app (Qt, a driver, a user's extension) leaves a Python stack on stderr."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CRASH = """
from visualizer.gui.app import enable_crash_traces
enable_crash_traces()

def inside_the_app():
    import ctypes
    ctypes.string_at(0)      # reads address 0: a segmentation fault

inside_the_app()
"""


def test_a_segmentation_fault_prints_where_it_happened():
    r = subprocess.run([sys.executable, "-c", CRASH], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode != 0
    assert "Segmentation fault" in r.stderr and "inside_the_app" in r.stderr, r.stderr
