"""Where the app keeps what it makes for the user: autosaves and run files (torch-free, no Qt).

The per-user data folder is platformdirs' user data dir (``~/.local/share/cnn-visualizer``
on Linux, ``~/Library/Application Support/cnn-visualizer`` on macOS, ``%LOCALAPPDATA%``
on Windows), or ``$CNN_VISUALIZER_DATA_DIR`` when set (the test suite always sets it, so
tests never write to the home folder). Settings and the trust store live apart, in the
config folder (``$CNN_VISUALIZER_CONFIG_DIR``): losing them is harmless, losing these is not.
"""
from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "CNN_VISUALIZER_DATA_DIR"
APP_NAME = "cnn-visualizer"


def data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    import platformdirs
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def autosave_dir() -> Path:
    """Resumable checkpoints of the app's training runs (``core/engine/autosave.py``)."""
    return data_dir() / "autosave"


def runs_dir() -> Path:
    """``.cnnviz`` run files of the app's training runs (``core/engine/run_keeper.py``)."""
    return data_dir() / "runs"
