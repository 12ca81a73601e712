"""Training faults: divergence, memory errors, tiny batches with BatchNorm, missing CUDA, resume."""
from __future__ import annotations

import pytest
import torch

from visualizer.core.assemble import data_for, new_model_bundle
from visualizer.core.checkpoint import load_model, save_checkpoint
from visualizer.core.config import TrainConfig
from visualizer.core.datasets import load_dataset
from visualizer.core.snapshot import Diverged, EpochEnd, Finished
from visualizer.core.training import Trainer


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", limit=257)   # 257: an odd count leaves remainder batches


def lenet(digits, **options):
    bundle = new_model_bundle("lenet5", digits, seed=0, **options)
    return bundle, data_for(bundle, digits, val_fraction=0.1)


def test_learning_rate_1e6_is_caught_within_a_few_steps_and_the_checkpoint_stays_finite(digits, tmp_path):
    bundle, data = lenet(digits)
    t = Trainer(bundle, data, TrainConfig(epochs=3, lr=1e6, momentum=0.0, snapshot_hz=0))
    events = list(t.run())
    d = events[-1]
    assert isinstance(d, Diverged) and d.step <= 5
    assert "lower learning rate" in d.message and "1e+06" in d.message
    path = tmp_path / "last_good.pt"
    save_checkpoint(path, bundle, training_state=t.state_dict())
    loaded = load_model(path)
    assert all(torch.isfinite(v).all() for v in loaded.model.state_dict().values() if v.is_floating_point())
    assert not loaded.warnings


def test_out_of_memory_in_the_step_raises_a_clear_error_and_leaves_the_weights(digits, monkeypatch):
    bundle, data = lenet(digits)
    t = Trainer(bundle, data, TrainConfig(epochs=1, snapshot_hz=0))
    before = {k: v.clone() for k, v in bundle.model.state_dict().items()}

    def boom(*a, **k):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(bundle.model, "forward", boom)
    with pytest.raises(RuntimeError, match="out of memory"):
        list(t.run())
    assert all(torch.equal(before[k], v) for k, v in bundle.model.state_dict().items())


def test_batch_size_1_with_batchnorm_is_refused_with_a_reason(digits):
    bundle, data = lenet(digits, batchnorm=True)
    with pytest.raises(ValueError, match="BatchNorm"):
        Trainer(bundle, data, TrainConfig(batch_size=1, snapshot_hz=0))


def test_batch_size_1_without_batchnorm_trains(digits):
    bundle, data = lenet(digits)
    t = Trainer(bundle, data, TrainConfig(epochs=1, batch_size=1, snapshot_hz=0))
    t.control.step(5)
    it = t.run()
    while t.step < 5:
        next(it)
    assert t.step == 5


def test_a_remainder_batch_of_one_is_skipped_with_batchnorm(digits):
    bundle, data = lenet(digits, batchnorm=True)
    n = len(data.train)
    bs = next(b for b in range(2, 64) if n % b == 1)
    t = Trainer(bundle, data, TrainConfig(epochs=1, batch_size=bs, snapshot_hz=0))
    events = list(t.run())
    assert isinstance(events[-1], Finished) and isinstance(events[-2], EpochEnd)
    assert t.step == n // bs and any("BatchNorm" in m for m in t.notices)


def test_cuda_selected_but_unavailable_falls_back_to_cpu(digits, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # also on a machine with a GPU
    bundle, data = lenet(digits)
    t = Trainer(bundle, data, TrainConfig(epochs=1, snapshot_hz=0, device="cuda"))
    assert t.device.type == "cpu" and "CPU" in " ".join(t.notices)
    events = list(t.run())
    assert isinstance(events[-1], Finished)


def test_resume_through_a_checkpoint_2_plus_2_equals_4_epochs(tmp_path, digits):
    # (a cosine schedule depends on the total epoch count, so "2 then 4" would legitimately differ)
    cfg = dict(batch_size=32, optimizer="adam", lr=1e-3, schedule="step", gamma=0.5, snapshot_hz=0, seed=3)
    bundle, data = lenet(digits, dropout=0.3)
    straight = Trainer(bundle, data, TrainConfig(epochs=4, **cfg))
    list(straight.run())

    b1, d1 = lenet(digits, dropout=0.3)
    first = Trainer(b1, d1, TrainConfig(epochs=2, **cfg))
    assert isinstance(list(first.run())[-1], Finished)
    path = tmp_path / "half.pt"
    save_checkpoint(path, b1, training_state=first.state_dict())
    first.close()

    loaded = load_model(path)
    d2 = data_for(loaded, digits, val_fraction=0.1, reuse_normalisation=True)
    second = Trainer(loaded, d2, TrainConfig(epochs=4, **cfg))
    second.load_state_dict(loaded.meta["training_state"])
    list(second.run())
    a, b = straight.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
