"""Settings that cannot be used, and a trust store that cannot be written, never stop the app."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.gui.test_main_window import WAIT, open_window
from visualizer.gui.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_impossible_saved_values_start_the_window_with_defaults_and_say_so_once(qtbot, tmp_path):
    settings = Settings(tmp_path / "settings.ini")
    # What a hand-edited or foreign settings file can hold (JSON's Infinity is accepted by Python).
    settings.set("training/options", '{"batch_size": 1e20, "lr": Infinity, "epochs": -5, "momentum": 0.5, '
                                     '"optimizer": "rmsprop", "seed": "many"}')
    settings.sync()
    w = open_window(qtbot, Settings(tmp_path / "settings.ini"))
    try:
        level, text = w.last_message
        assert level == "warning" and text.count("•") == 5
        for entry in ("batch_size = 1e+20", "lr = inf", "epochs = -5", "optimizer = 'rmsprop'", "seed = 'many'"):
            assert entry in text
        assert w.training_panel.momentum.value() == 0.5            # the usable value was kept
        assert w.training_panel.optimizer.currentData() == "sgd"    # the others are the defaults
        assert w.training_panel.lr.value() == 0.01
    finally:
        w.close()


def test_a_config_folder_that_cannot_be_created_does_not_stop_the_app(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen",
               CNN_VISUALIZER_CONFIG_DIR=str(blocker / "config"))
    r = subprocess.run([sys.executable, "-m", "visualizer", "--quit-after", "2"], env=env, capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if "settings ignored" in line]
    assert len(said) == 1 and f"the settings folder {blocker / 'config'} cannot be created" in said[0]
    assert blocker.read_text() == "not a folder"


def test_a_trust_store_that_cannot_be_written_still_opens_the_confirmed_file(qtbot, tmp_path):
    from visualizer.core.architectures import build_model

    store = Path(os.environ["CNN_VISUALIZER_CONFIG_DIR"]) / "trusted_models.json"
    store.mkdir(parents=True)   # a folder where the file should be: no save may replace it
    w = open_window(qtbot, Settings(tmp_path / "settings.ini"))
    try:
        path = tmp_path / "whole.pt"
        torch.save(build_model("lenet5", in_channels=1, num_classes=10, input_size=32), path)
        w.controller.ask_trust = lambda req: (True, True)   # "Open" with "Remember this file" ticked
        w.open_path(str(path))
        qtbot.waitUntil(lambda: w.session.model.source == str(path), timeout=WAIT)
        qtbot.waitUntil(lambda: w.last_message is not None and w.last_message[0] == "warning", timeout=WAIT)
        assert "whole.pt opens now, but the choice to trust it was not remembered" in w.last_message[1]
        assert "is a folder" in w.last_message[1]
        assert store.is_dir() and list(store.iterdir()) == []
    finally:
        w.close()


def test_settings_the_app_wrote_itself_restore_without_a_complaint(qtbot, tmp_path):
    # The control: what the app writes it reads back without a complaint.
    first = open_window(qtbot, Settings(tmp_path / "settings.ini"))
    first.save_settings()
    first.close()
    saved = json.loads(Settings(tmp_path / "settings.ini").get("training/options", "", str))
    assert saved["batch_size"] == 32
    again = open_window(qtbot, Settings(tmp_path / "settings.ini"))
    try:
        assert again.last_message is None
    finally:
        again.close()
