"""Faults as a user meets them in the window: odd models, out of memory, trust, the safe copy.

The core-level tests (test_bad_model_files.py, test_training_faults.py) prove the loaders
and the trainer; these prove what the user sees: which message, which state the window is
left in, and that the next thing they do works.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PyQt6.QtWidgets import QMessageBox

from tests.gui.test_main_window import SHORT, WAIT, open_window, stop
from visualizer.core.config import TrainConfig
from visualizer.core.training import Trainer
from visualizer.gui.session import STOPPED
from visualizer.gui.settings import Settings

MLP = """
import torch.nn as nn


class MLP(nn.Module):
    '''No conv layer: the 8x8 digits flattened through two Linear layers.'''

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.body(x)
"""

TWO_INPUTS = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 4, 3)

    def forward(self, x, mask):
        return self.c(x * mask)
"""

DICT_INPUT = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(1, 4, 3)

    def forward(self, batch: dict):
        return self.c(batch["image"])
"""


@pytest.fixture
def window(qtbot, tmp_path):
    w = open_window(qtbot, Settings(tmp_path / "settings.ini"))
    yield w
    w.close()
    assert not w.controller.worker.is_running()


def _view(w, name: str):
    return next(v for v in w.views if type(v).__name__ == name)


def _open_and_wait(qtbot, w, spec: str) -> None:
    w.open_path(spec)
    qtbot.waitUntil(lambda: w.session.model.arch == spec and w.session.latest_probe is not None
                    and w.session.latest_probe.layers[0].name in w.layer_tree.layer_names(), timeout=WAIT)


def test_a_model_without_conv_layers_trains_and_the_image_views_say_why_they_are_empty(qtbot, window, tmp_path):
    src = tmp_path / "mlp.py"
    src.write_text(MLP)
    spec = f"{src}:MLP"
    window.controller.set_dataset("digits")        # the tiny 8x8 set (the sample opens on MNIST)
    qtbot.waitUntil(lambda: window.controller.data is not None and window.controller.data.spec == "digits",
                    timeout=WAIT)
    _open_and_wait(qtbot, window, spec)
    model = window.session.model
    assert model.input_shape == (1, 8, 8)          # the open data's shape: there is no Conv2d to read it from
    assert {"body.0", "body.1", "body.3"} <= set(window.layer_tree.layer_names())
    window.layer_tree.setCurrentItem(window.layer_tree.item_for("body.1"))   # a Linear layer
    qtbot.waitUntil(lambda: window.session.layer == "body.1" and all(
        v._probe is window.session.latest_probe for v in window.views if v is not window.curves), timeout=WAIT)
    for v in window.views:
        v.flush()
    fm = _view(window, "FeatureMapView")
    assert "no height and width, so there is no map" in fm.note.text()
    assert fm.stack.currentWidget() is fm.vector_graphics            # its 32 outputs as bars instead
    assert "No spatial layers" in _view(window, "OverviewStripView").message.text()
    assert "no conv layers" in _view(window, "FilterView").note.text()
    assert "no pooling layer" in _view(window, "PoolingView").message.text()
    # Training still works, and the gradient view shows the Linear layers.
    window.controller.start_training(TrainConfig(epochs=10_000, batch_size=32, snapshot_hz=30))
    qtbot.waitUntil(lambda: window.session.latest_training is not None
                    and window.session.latest_training.step >= 20, timeout=WAIT)
    snap = window.session.latest_training
    assert np.isfinite(snap.loss)
    assert {"body.1", "body.3"} <= {g.name for g in snap.gradients}
    stop(qtbot, window)


@pytest.mark.parametrize("body, why", [(TWO_INPUTS, "takes 2 inputs"), (DICT_INPUT, "takes a dict")])
def test_a_model_that_cannot_take_one_image_is_refused_naming_the_file(qtbot, window, tmp_path, body, why):
    src = tmp_path / "odd_net.py"
    src.write_text(body)
    window.open_path(f"{src}:Net")
    qtbot.waitUntil(lambda: window.last_message is not None, timeout=WAIT)
    level, text = window.last_message
    assert level == "error" and "odd_net.py" in text and why in text and "one image tensor" in text
    assert window.session.model.arch == "lenet5"     # the model shown before is kept, and works
    before = window.session.latest_probe
    window.controller.use_sample(2)
    qtbot.waitUntil(lambda: window.session.latest_probe is not before, timeout=WAIT)


def test_out_of_memory_offers_half_the_batch_and_training_then_runs(qtbot, window, monkeypatch):
    real_step = Trainer._train_step

    def step_needing_small_batches(self, *args, **kwargs):
        if self.config.batch_size > 16:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_train_step", step_needing_small_batches)
    window.training_panel.batch_size.setValue(32)
    window.controller.start_training()
    qtbot.waitUntil(lambda: window.session.training_state == STOPPED and window.last_message is not None,
                    timeout=WAIT)
    level, text = window.last_message
    assert level == "error" and "out of memory at batch size 32" in text and "16" in text
    box = window._messages[-1]
    retry = box.defaultButton()
    assert retry is not None and "16" in retry.text()
    assert sum(1 for b in window._messages if b.isVisible()) == 1   # one dialog, not a failure on top
    retry.click()
    qtbot.waitUntil(lambda: window.session.latest_training is not None
                    and window.session.latest_training.step >= 5, timeout=WAIT)
    assert window.training_panel.batch_size.value() == 16
    stop(qtbot, window)


def test_out_of_memory_cancelled_leaves_the_batch_size_and_the_window_usable(qtbot, window, monkeypatch):
    def oom(self, *args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(Trainer, "_train_step", oom)
    window.training_panel.batch_size.setValue(32)
    window.controller.start_training()
    qtbot.waitUntil(lambda: window.session.training_state == STOPPED and bool(window._messages), timeout=WAIT)
    window._messages[-1].button(QMessageBox.StandardButton.Cancel).click()
    assert window.training_panel.batch_size.value() == 32 and window.session.training_state == STOPPED
    before = window.session.latest_probe
    window.controller.use_sample(4)
    qtbot.waitUntil(lambda: window.session.latest_probe is not before, timeout=WAIT)


def _pickled_lenet(path):
    from visualizer.core.architectures import build_model
    torch.manual_seed(7)
    model = build_model("lenet5", in_channels=1, num_classes=10, input_size=32)
    torch.save(model, path)
    return model


def test_a_remembered_file_is_trusted_by_its_contents_not_its_name(qtbot, window, tmp_path):
    path = tmp_path / "whole.pt"
    _pickled_lenet(path)
    asked = []
    window.controller.ask_trust = lambda req: asked.append(req) or (True, True)   # "Remember this file"
    window.open_path(str(path))
    qtbot.waitUntil(lambda: window.session.model.source == str(path), timeout=WAIT)
    assert len(asked) == 1
    # The same bytes under another name: not asked again.
    copy = tmp_path / "renamed_copy.pt"
    copy.write_bytes(path.read_bytes())
    window.open_path(str(copy))
    qtbot.waitUntil(lambda: window.session.model.source == str(copy), timeout=WAIT)
    assert len(asked) == 1
    # The remembered file changed in place: asked again (and refused here, so nothing changes).
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten()), path)
    window.controller.ask_trust = lambda req: asked.append(req) or False
    window.open_path(str(path))
    qtbot.waitUntil(lambda: len(asked) == 2, timeout=WAIT)
    assert asked[-1].info.sha256 != asked[0].info.sha256
    qtbot.wait(200)
    assert window.session.model.source == str(copy)


def test_after_a_trusted_load_the_offered_safe_copy_opens_without_trust(qtbot, window, tmp_path):
    from visualizer.core.checkpoint import ArchitectureRequired, load_model

    path = tmp_path / "whole.pt"
    original = _pickled_lenet(path)
    offered: list[str] = []
    target = tmp_path / "whole.safetensors"
    window.controller.ask_trust = lambda req: True
    window.controller.offer_safetensors = lambda source: offered.append(source) or str(target)
    saved: list[str] = []
    window.controller.saved.connect(saved.append)
    window.open_path(str(path))
    qtbot.waitUntil(lambda: saved == [str(target)], timeout=WAIT)
    assert offered == [str(path)]
    # Tier 1: no trust needed. Only the weights are in it: the pickled class is named, so the
    # user knows what to give; with it, the same weights.
    with pytest.raises(ArchitectureRequired, match="LeNet5"):
        load_model(target)
    bundle = load_model(target, arch="lenet5")
    for k, v in original.state_dict().items():
        assert torch.equal(bundle.model.state_dict()[k], v), k
    # And in the window: no trust question, only which model the weights are for.
    asked = []
    window.controller.ask_trust = lambda req: asked.append(req) or False
    window.controller.ask_model_spec = lambda p, info: {"arch": "lenet5"}
    window.open_path(str(target))
    qtbot.waitUntil(lambda: window.session.model.source == str(target), timeout=WAIT)
    assert asked == [] and not window.session.model.trusted


def test_an_untrusted_load_offers_no_safe_copy(qtbot, window, tmp_path):
    from visualizer.core.architectures import build_model
    from visualizer.core.checkpoint import save_checkpoint
    from visualizer.core.model_bundle import ModelBundle

    path = tmp_path / "ours.pt"
    model = build_model("lenet5", in_channels=1, num_classes=10, input_size=32)
    save_checkpoint(path, ModelBundle(model, (1, 32, 32), tuple(map(str, range(10))), mean=(0.0,), std=(1.0,),
                                      arch="lenet5",
                                      arch_options={"in_channels": 1, "num_classes": 10, "input_size": 32}))
    offered: list[str] = []
    window.controller.offer_safetensors = lambda source: offered.append(source)
    window.open_path(str(path))
    qtbot.waitUntil(lambda: window.session.model.source == str(path), timeout=WAIT)
    qtbot.wait(100)
    assert offered == []


def test_a_worker_failure_during_a_run_is_one_message_and_the_next_run_works(qtbot, window, monkeypatch):
    calls = [0]
    real_step = Trainer._train_step

    def fails_once(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("simulated failure inside the step")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_train_step", fails_once)
    window.controller.start_training(SHORT)
    qtbot.waitUntil(lambda: window.session.training_state == STOPPED and window.last_message is not None,
                    timeout=WAIT)
    assert "simulated failure" in window.last_message[1]
    window.controller.start_training(SHORT)
    qtbot.waitUntil(lambda: window.session.latest_training is not None
                    and window.session.latest_training.step >= 5, timeout=WAIT)
    stop(qtbot, window)
