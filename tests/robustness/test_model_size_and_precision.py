"""Model files that would allocate too much, or hold weights in another precision.

A checkpoint whose options would build more than 2 GB of weights is refused before anything
is allocated; float16/float64 models are converted to float32 with a note; complex ones refused.
"""
from __future__ import annotations

import textwrap

import psutil
import pytest
import torch
import torch.nn as nn

from visualizer.cli import main
from visualizer.core.architectures import build_model
from visualizer.core.checkpoint import checkpoint_dict, load_model
from visualizer.core.config import TrainConfig
from visualizer.core.datasets import DataOptions, load_dataset, prepare
from visualizer.core.errors import LoadError
from visualizer.core.inspector import Inspector
from visualizer.core.model_bundle import ModelBundle
from visualizer.core.snapshot import CaptureRequest, EpochEnd
from visualizer.core.training import Trainer

HUGE = {"in_channels": 4096, "num_classes": 10, "input_size": 4096, "width": 4.0}   # each option is in range


def test_a_checkpoint_whose_options_build_over_2_gb_is_refused_before_allocating(tmp_path, capsys):
    small = ModelBundle(build_model("alexnet"), (1, 64, 64), tuple("0123456789"), arch="alexnet",
                        arch_options={"in_channels": 1, "num_classes": 10, "input_size": 64})
    ck = checkpoint_dict(small)
    ck["arch_options"] = HUGE   # what a damaged or hostile file can say
    ck["input_shape"] = [4096, 64, 64]
    path = tmp_path / "huge.pt"
    torch.save(ck, path)

    rss = psutil.Process().memory_info().rss
    with pytest.raises(LoadError) as e:
        load_model(path)
    grown = psutil.Process().memory_info().rss - rss
    assert e.value.path == str(path) and "4.2 GB of weights, over the 2 GB limit" in str(e.value)
    assert e.value.hint and grown < 300e6   # 4.2 GB would have been touched by the initialisation
    assert main(["info", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(path) in line and "over the 2 GB limit" in line


def test_fresh_training_with_options_over_2_gb_is_refused_too(tmp_path, capsys):
    rc = main(["train", "--arch", "alexnet", "--width", "4", "--input-size", "4096", "--dataset", "digits",
               "--epochs", "1", "--quiet", "--out", str(tmp_path / "x.pt")])
    assert rc == 2 and "over the 2 GB limit" in capsys.readouterr().err


def lenet(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    return build_model("lenet5", in_channels=1, num_classes=10, input_size=32, batchnorm=True).to(dtype)


@pytest.mark.parametrize("dtype, name", [(torch.float16, "float16"), (torch.float64, "float64"),
                                         (torch.bfloat16, "bfloat16")])
def test_a_whole_model_in_another_precision_is_converted_and_trains(tmp_path, dtype, name):
    path = tmp_path / "whole.pt"
    torch.save(lenet(dtype), path)
    bundle = load_model(path, trust=True)
    assert {p.dtype for p in bundle.model.parameters()} == {torch.float32}
    assert any(f"stored as {name}; converted to float32" in w for w in bundle.warnings)

    ds = load_dataset("digits", limit=200)
    data = prepare(ds, DataOptions(input_shape=(1, 32, 32)))
    bundle = ModelBundle(bundle.model, (1, 32, 32), ds.class_names, data.mean, data.std)
    insp = Inspector(bundle)
    try:
        image, _ = data.sample(0)
        assert insp.probe(CaptureRequest(layers=("*",)), image).probabilities.shape == (10,)
    finally:
        insp.close()
    trainer = Trainer(bundle, data, TrainConfig(epochs=1, batch_size=32, snapshot_hz=0))
    try:
        (end,) = [e for e in trainer.run() if isinstance(e, EpochEnd)]
    finally:
        trainer.close()
    assert end.train_loss == end.train_loss   # a real number: the step ran in one precision


def test_a_model_with_complex_weights_is_refused(tmp_path):
    path = tmp_path / "complex.pt"
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(64, 10).to(torch.complex64)), path)
    with pytest.raises(LoadError) as e:
        load_model(path, trust=True)
    assert e.value.path == str(path) and "complex64 (complex) weights" in str(e.value)


def test_a_user_class_that_builds_itself_in_half_precision_is_converted(tmp_path, capsys):
    f = tmp_path / "half.py"
    f.write_text(textwrap.dedent("""
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = nn.Conv2d(1, 4, 3)
                self.fc = nn.Linear(4 * 26 * 26, 10)
                self.half()
            def forward(self, x):
                return self.fc(self.c(x).flatten(1))
    """))
    assert main(["info", f"{f}:Net", "--input-size", "28"]) == 0
    out = capsys.readouterr()
    assert "input 1×28×28" in out.out
    assert "warning: the weights were stored as float16; converted to float32" in out.err
