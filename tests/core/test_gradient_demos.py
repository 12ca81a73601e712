"""The two lecture demos the gradient view exists for, checked on the numbers it shows."""
from __future__ import annotations

import pytest

from visualizer.core.assemble import data_for, new_model_bundle
from visualizer.core.config import TrainConfig
from visualizer.core.datasets import load_dataset
from visualizer.core.snapshot import CaptureRequest, TrainingSnapshot
from visualizer.core.training import Trainer, TrainingControl


def first_snapshot_gradients(arch, ds, **options):
    bundle = new_model_bundle(arch, ds, seed=0, **options)
    data = data_for(bundle, ds, val_fraction=0.0)
    control = TrainingControl()
    trainer = Trainer(bundle, data, TrainConfig(epochs=1, batch_size=32, snapshot_hz=1000,
                                                instrumentation_budget=1.0), control)
    control.request_capture(CaptureRequest(layers=()))
    try:
        snap = next(e for e in trainer.run() if isinstance(e, TrainingSnapshot))
    finally:
        control.stop()
        trainer.close()
    return [g.weight_norm for g in snap.gradients]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", limit=64)


def test_sigmoid_gradients_vanish_towards_the_input_relu_ones_do_not(digits):
    relu = first_snapshot_gradients("lenet5", digits, activation="relu")
    sigm = first_snapshot_gradients("lenet5", digits, activation="sigmoid")
    # first conv layer relative to the output layer
    assert sigm[0] / sigm[-1] < 0.1 * (relu[0] / relu[-1])


def test_plain_network_gradients_vanish_residual_ones_do_not():
    shapes = load_dataset("shapes", limit=64)
    res = first_snapshot_gradients("resnet18", shapes, width=0.125)
    plain = first_snapshot_gradients("plain18", shapes, width=0.125)
    assert plain[0] / plain[-1] < 0.01 * (res[0] / res[-1])
