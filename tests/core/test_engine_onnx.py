"""An ONNX file in the engine (no Qt): it holds an OnnxInspector where it would hold an Inspector.

Probes answer as for a PyTorch model; training, resetting, saving and the analyses that need
the PyTorch module are refused with the reason; a data set it cannot take and a bad file change
nothing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.core.test_onnx_models import LeNet5, export
from tests.extras import require
from visualizer.core.config import TrainConfig
from visualizer.core.engine.analysis import analyse
from visualizer.core.engine.engine import Engine
from visualizer.core.engine.messages import describe_error
from visualizer.core.errors import LoadError, ModelError
from visualizer.core.onnx import TRAINING_REFUSAL, OnnxInspector
from visualizer.core.snapshot import CaptureRequest, ProbeSnapshot
from visualizer.core.training import TrainingControl

require("onnxruntime", "onnx")
require("onnxscript", "onnx")


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    torch.manual_seed(0)
    model = LeNet5().eval()
    return model, export(model, (1, 32, 32), tmp_path_factory.mktemp("engine_onnx") / "lenet.onnx")


@pytest.fixture
def engine():
    events: list = []
    e = Engine(lambda name, payload: events.append((name, payload)), sample_limit=300)
    e.load_sample()
    e.events = events
    yield e
    e.close()


def guarded(engine, method, *args, **kwargs) -> str | None:
    """Call as the service does: the failure message, or None."""
    try:
        getattr(engine, method)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - what EngineService._guarded does
        return describe_error(exc)
    return None


def test_an_onnx_file_is_probed_like_a_pytorch_model(engine, onnx_file):
    model, path = onnx_file
    engine.events.clear()
    engine.load_file(str(path))
    loaded = [p for n, p in engine.events if n == "model_loaded"][-1]
    assert loaded.training_refusal == TRAINING_REFUSAL and loaded.arch == "onnx" and loaded.source == str(path)
    assert [layer.kind for layer in loaded.info.layers].count("conv") == 2
    assert isinstance(engine.idle_inspector(), OnnxInspector)
    assert engine.data is not None and engine.data.input_shape == (1, 32, 32)   # the open data, fitted to it
    snap = engine.probe(CaptureRequest(layers=("*",), probe_index=4))
    assert isinstance(snap, ProbeSnapshot) and snap.layers and snap.activations
    x = torch.from_numpy(np.array(snap.input_image)).unsqueeze(0)      # mean 0, std 1: what the file assumes
    with torch.no_grad():
        probs = torch.softmax(model(x), 1)[0].numpy()
    np.testing.assert_allclose(snap.probabilities, probs, rtol=1e-4, atol=1e-6)


def test_training_resetting_saving_and_module_analyses_are_refused_with_the_reason(engine, onnx_file, tmp_path):
    _model, path = onnx_file
    engine.load_file(str(path))
    engine.events.clear()
    engine.train(TrainConfig(epochs=1), TrainingControl())
    failed = [p for n, p in engine.events if n == "failed"]
    assert failed == [TRAINING_REFUSAL]
    assert [p.reason for n, p in engine.events if n == "finished"] == ["failed"]
    assert isinstance(engine.idle_inspector(), OnnxInspector)              # still open, still probed
    assert engine.probe(CaptureRequest(layers=("*",))) is not None
    assert "inspection only" in guarded(engine, "reset_weights")
    assert "inspection only" in guarded(engine, "save", str(tmp_path / "x.pt"))
    for kind, params in (("health", {}), ("top_patches", {"layer": "x"}), ("step", {"layer": "x"}), ("cam", {})):
        with pytest.raises(ModelError, match="ONNX model is opened for inspection only"):
            analyse(engine, kind, params, CaptureRequest())


def test_a_data_set_it_cannot_take_and_a_bad_file_change_nothing(engine, onnx_file, tmp_path):
    _model, path = onnx_file
    engine.load_file(str(path))
    bundle, data = engine.bundle, engine.data
    problem = guarded(engine, "set_dataset", "shapes", limit=60)           # 3 channels, 6 classes
    assert problem and "expects 1 channel(s) and 10 classes" in problem
    assert engine.bundle is bundle and engine.data is data
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(path.read_bytes()[:200])                               # a truncated file
    with pytest.raises(LoadError, match="broken.onnx"):
        engine.load_file(str(bad))
    assert engine.bundle is bundle and engine.data is data
    assert engine.probe(CaptureRequest(layers=("*",))) is not None
    engine.load_sample()                                                   # and back to PyTorch
    assert engine.bundle.arch == "lenet5" and not isinstance(engine.idle_inspector(), OnnxInspector)


def test_the_normalisation_and_class_names_an_onnx_file_lacks_can_be_given(engine, onnx_file):
    model, path = onnx_file
    engine.load_file(str(path))
    names = tuple(f"digit {i}" for i in range(10))
    assert guarded(engine, "set_input_format", (0.1307,), (0.3081,), names) is None
    snap = engine.probe(CaptureRequest(layers=("*",), probe_index=4))
    assert snap.class_names == names
    x = (torch.from_numpy(np.array(snap.input_image)).unsqueeze(0) - 0.1307) / 0.3081
    with torch.no_grad():
        probs = torch.softmax(model(x), 1)[0].numpy()
    np.testing.assert_allclose(snap.probabilities, probs, rtol=1e-4, atol=1e-6)
