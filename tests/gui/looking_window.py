"""A real window on the thread engine for the looking tools (Health, Top patches, ONNX), and what a user sees of them."""
from __future__ import annotations

import copy

import torch

from visualizer.core.checkpoint import load_model
from visualizer.core.resources import sample_model_path
from visualizer.gui.controller import Controller
from visualizer.gui.main_window import MainWindow
from visualizer.gui.session import STOPPED
from visualizer.gui.settings import Settings

WAIT = 30_000
# The health check needs 256 training samples: more of the sample data than the main window tests use.
LIMIT = 600


def open_window(qtbot, settings: Settings, limit: int = LIMIT, path: str | None = None) -> MainWindow:
    """The window as the app opens it (``path``: the file given on the command line)."""
    controller = Controller(settings, sample_limit=limit)
    w = MainWindow(settings, controller=controller)
    controller.ask_trust = lambda req: False
    controller.ask_model_spec = lambda path, info: None
    controller.offer_safetensors = lambda source: None
    qtbot.addWidget(w)
    w.show()
    w.start(path)
    qtbot.waitUntil(lambda: w.session.model is not None and w.session.latest_probe is not None, timeout=WAIT)
    return w


class StatusLog:
    """Every text the window's status bar showed (a message may be replaced before a test looks)."""

    def __init__(self, window: MainWindow):
        self.texts: list[str] = []
        window.statusBar().messageChanged.connect(self._add)

    def _add(self, text: str) -> None:
        if text:
            self.texts.append(text)

    def containing(self, part: str) -> list[str]:
        return [t for t in self.texts if part in t]


def sample_lenet():
    """The shipped LeNet-5 trained on MNIST: a healthy model."""
    return load_model(sample_model_path())


def dead_relu_lenet():
    """The shipped LeNet-5 with C3's bias far negative: its ReLU (C3_act) never fires."""
    bundle = copy.deepcopy(sample_lenet())
    with torch.no_grad():
        bundle.model.C3.bias.fill_(-100.0)
    return bundle


def open_bundle(qtbot, w: MainWindow, bundle) -> None:
    before = w.session.model
    w.controller.worker.load_bundle(bundle)
    qtbot.waitUntil(lambda: w.session.model is not before and w.session.latest_probe is not None, timeout=WAIT)


def stop(qtbot, w: MainWindow) -> None:
    w.controller.stop()
    qtbot.waitUntil(lambda: w.session.training_state == STOPPED, timeout=WAIT)


def show_view(qtbot, w: MainWindow, view) -> None:
    """Bring ``view``'s tab to the front, as a click on it does."""
    w.view_docks[view].raise_()
    qtbot.waitUntil(view.isVisible, timeout=WAIT)


def view_of(w: MainWindow, title: str):
    return next(v for v in w.views if v.title == title)
