"""A save killed mid-write leaves a temp file; the app removes it at its next start."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from visualizer.core.architectures import build_model
from visualizer.core.checkpoint import load_model, save_checkpoint
from visualizer.core.model_bundle import ModelBundle
from visualizer.gui.app import sweep_interrupted_saves
from visualizer.gui.settings import Settings


def test_app_start_sweeps_the_leftover_of_a_killed_save(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    ckpt = folder / "run.pt"
    bundle = ModelBundle(build_model("lenet5"), (1, 32, 32), tuple("0123456789"), arch="lenet5",
                         arch_options={"in_channels": 1, "num_classes": 10, "input_size": 32})
    save_checkpoint(ckpt, bundle)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    leftover = folder / f".run.pt.cnnvis-{dead}.tmp"
    leftover.write_bytes(b"PK\x03\x04 half a checkpoint")
    hour_ago = time.time() - 3600   # the killed save was an hour ago: past the grace period
    os.utime(leftover, (hour_ago, hour_ago))
    unrelated = folder / "notes.tmp"
    foreign = folder / f".thesis.docx.{dead}.tmp"   # same shape, another program's: never ours
    foreign.write_text("someone else")
    unrelated.write_text("not ours")
    settings = Settings(tmp_path / "settings.ini")
    settings.add_recent(str(ckpt))
    removed = sweep_interrupted_saves(settings)
    assert leftover in removed and not leftover.exists()
    assert unrelated.exists() and foreign.exists() and ckpt.exists()
    assert load_model(ckpt).arch == "lenet5"
