"""Fixtures for the record tests: real LeNet-5 snapshots, made once per test session."""
import pytest


@pytest.fixture(scope="session")
def lenet():
    """(ModelInfo, [TrainingSnapshot] * 4) from real training steps (see lenet_snapshots.py)."""
    from tests.core.record.lenet_snapshots import lenet_training_snapshots
    return lenet_training_snapshots(4)


@pytest.fixture(scope="session")
def lenet_records(lenet):
    """The four snapshots encoded as a recorder stores them (compact)."""
    from visualizer.core.record.encoding import encode_record
    return [encode_record(s) for s in lenet[1]]
