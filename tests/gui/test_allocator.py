"""The GUI process's allocator setting (allocator.py): applied where it only draws, never where it trains."""
from __future__ import annotations

import subprocess
import sys

import pytest

from visualizer.gui import app as app_module


def test_settle_fixes_the_threshold_only_in_a_process_that_does_not_train(monkeypatch):
    calls = []
    monkeypatch.setattr(app_module, "fix_mmap_threshold", lambda: calls.append(1) or True)
    monkeypatch.setattr(app_module.gc, "freeze", lambda: None)   # keep the test process's collector as it is
    app_module.settle(trains_here=True)
    assert calls == []
    app_module.settle(trains_here=False)
    assert calls == [1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_big_blocks_go_back_to_the_os():
    # In a fresh process (the setting is process-wide): growing arrays made and freed every
    # "frame", as the live plots do, with small long-lived objects allocated in between.
    script = r"""
import sys, numpy as np, psutil
from visualizer.gui.allocator import fix_mmap_threshold
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
me = psutil.Process()
keep = []
base = me.memory_info().rss
for i in range(400):
    a = np.ones(100_000 + 2_000 * i)
    b = np.ones(50_000 + 1_000 * i)
    keep.append(bytes(200))
    del a, b
print((me.memory_info().rss - base) / 2**20)
"""
    grown = {}
    for mode in ("default", "fixed"):
        out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        grown[mode] = float(out.stdout.strip())
    assert grown["fixed"] < 2.0, grown
    assert grown["fixed"] < grown["default"], grown
