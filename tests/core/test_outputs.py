"""Models whose forward returns more or less than (batch, classes): one rule for training and prediction.

Each model trains through the real Trainer on two learnable classes, and the prediction comes
from the real Inspector, so what is checked is what the user sees: the accuracy in the epoch
line and the probabilities in the prediction view.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
import torch
import torch.nn as nn

from tests.core.test_training import TinyData, bundle_for
from visualizer.core.config import TrainConfig
from visualizer.core.errors import ModelError
from visualizer.core.inspector import Inspector
from visualizer.core.snapshot import CaptureRequest, EpochEnd
from visualizer.core.training import Trainer

Outputs = namedtuple("Outputs", ["logits", "aux_logits"])
Unnamed = namedtuple("Unnamed", ["main", "aux"])


class Net(nn.Module):
    """A small classifier whose forward wraps its scores as ``kind`` says."""

    def __init__(self, kind: str, classes: int = 2):
        super().__init__()
        self.kind = kind
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, classes)
        self.aux = nn.Linear(4, classes)
        self.seg = nn.Conv2d(4, classes, 1)

    def forward(self, x):
        k = self.kind
        if k == "spatial":
            return self.seg(torch.relu(self.body[0](x)))
        f = self.body(x)
        scores = self.head(f)
        # the auxiliary head gives garbage (a constant): training on it would learn nothing
        aux = torch.zeros_like(scores) + self.aux.bias
        return {
            "tensor": lambda: scores,
            "named_train_aux": lambda: Outputs(scores, aux) if self.training else scores,
            "unnamed_train_aux": lambda: Unnamed(scores, aux) if self.training else scores,
            "tuple": lambda: (scores, f),
            "dict_logits": lambda: {"features": f, "logits": scores},
            "dict_out": lambda: {"aux": aux, "out": scores},
            "one_logit": lambda: scores[:, :1],
            "flat": lambda: scores[:, 0],
            "dict_other": lambda: {"features": f, "scores": scores},
        }[k]()


def train(kind: str, classes: int = 2):
    torch.manual_seed(0)
    data = TinyData()
    trainer = Trainer(bundle_for(Net(kind, classes), data), data,
                      TrainConfig(epochs=3, batch_size=16, lr=0.1, snapshot_hz=0))
    try:
        epochs = [e for e in trainer.run() if isinstance(e, EpochEnd)]
    finally:
        trainer.close()
    return trainer, epochs


def prediction(kind: str) -> np.ndarray:
    torch.manual_seed(0)
    data = TinyData()
    insp = Inspector(bundle_for(Net(kind), data))
    try:
        image, _ = data.sample(0)
        return insp.probe(CaptureRequest(layers=("*",)), image).probabilities
    finally:
        insp.close()


@pytest.mark.parametrize("kind", ["tensor", "named_train_aux", "unnamed_train_aux", "tuple", "dict_logits",
                                  "dict_out"])
def test_the_classification_output_is_found_and_trained(kind):
    _, epochs = train(kind)
    assert epochs[-1].val_accuracy > 0.9   # learnt from the scores, not from the constant aux head
    p = prediction(kind)
    assert p.shape == (2,) and abs(float(p.sum()) - 1) < 1e-5


@pytest.mark.parametrize("kind, words", [
    ("one_logit", "one score per sample"),
    ("flat", "one score per sample"),
    ("spatial", "a spatial map"),
    ("dict_other", "without a 'logits' or 'out' entry (it has 'features', 'scores')"),
])
def test_outputs_that_are_not_class_scores_are_refused_with_the_reason(kind, words):
    with pytest.raises(ModelError) as e:
        train(kind)
    assert words in str(e.value) and "(batch, classes)" in str(e.value)
    # and the prediction view shows no prediction rather than a wrong "100%"
    assert prediction(kind).size == 0


def test_fewer_scores_than_classes_is_refused():
    data = TinyData()
    data.class_names = ("a", "b", "c")
    torch.manual_seed(0)
    trainer = Trainer(bundle_for(Net("tensor"), data), data, TrainConfig(epochs=1, batch_size=16, snapshot_hz=0))
    try:
        with pytest.raises(ModelError, match="2 scores per sample but the data set has 3 classes"):
            list(trainer.run())
    finally:
        trainer.close()
