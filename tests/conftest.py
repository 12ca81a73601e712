"""Suite-wide set-up: no display needed, no writes to the home folder."""
import os

# Qt tests run offscreen unless a test (the real-window ones) says otherwise.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Two cores are shared by the whole suite: keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest


@pytest.fixture
def mnist_dir():
    """The folder of the MNIST test split shipped in resources/data (never skipped: it is tracked)."""
    from visualizer.core.resources import resource_path
    return resource_path("data", "t10k-images-idx3-ubyte.gz").parent


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Settings, trust store and recent files, autosaves and run files go to temporary folders, never ~."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("CNN_VISUALIZER_CONFIG_DIR", str(home))
    monkeypatch.setenv("CNN_VISUALIZER_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    yield
