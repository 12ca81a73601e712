"""The sample models in models/: small, safe to load, and as accurate as the README says."""
from __future__ import annotations

from pathlib import Path

import pytest

from visualizer.core.assemble import data_for
from visualizer.core.checkpoint import inspect_model_file, load_model
from visualizer.core.config import TrainConfig
from visualizer.core.datasets import load_dataset
from visualizer.core.training import Trainer

MODELS = Path(__file__).resolve().parents[1] / "models"


def held_out_accuracy(path, dataset, val_fraction=0.2):
    """Accuracy on the split `scripts/train_sample_models.sh` held out (same seed, same fraction)."""
    bundle = load_model(path)
    ds = load_dataset(dataset, seed=0)
    data = data_for(bundle, ds, val_fraction=val_fraction, seed=0, reuse_normalisation=True)
    trainer = Trainer(bundle, data, TrainConfig(snapshot_hz=0))
    try:
        return trainer.evaluate()[1], len(data.val)
    finally:
        trainer.close()


@pytest.mark.parametrize("name", ["lenet5_mnist.pt", "lenet5_digits.pt", "simplecnn_shapes.pt"])
def test_sample_models_are_small_and_load_without_trust(name):
    path = MODELS / name
    assert path.stat().st_size <= 2 * 2**20
    info = inspect_model_file(path)
    assert info.format == "checkpoint" and not info.needs_trust
    bundle = load_model(path)
    assert bundle.probeable and not bundle.warnings


def test_lenet5_mnist_reaches_98_percent_on_held_out_digits():
    """The app's default sample, measured on the 2,000 shipped MNIST digits its training held out."""
    acc, n = held_out_accuracy(MODELS / "lenet5_mnist.pt", "mnist")
    assert n == 2000
    assert acc >= 0.98, acc


def test_lenet5_digits_and_shapes_accuracy():
    acc, _ = held_out_accuracy(MODELS / "lenet5_digits.pt", "digits")
    assert acc >= 0.97, acc
    acc, _ = held_out_accuracy(MODELS / "simplecnn_shapes.pt", "shapes")
    assert acc >= 0.85, acc
