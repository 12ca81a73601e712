"""ONNX models: exported with torch.onnx.export (dynamo=True), inspected through onnxruntime, and
compared record by record with what the PyTorch Inspector makes of the same model and input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from tests.extras import require
from visualizer.core.errors import LoadError, ModelError
from visualizer.core.inspector import Inspector
from visualizer.core.model_bundle import ModelBundle
from visualizer.core.onnx import OnnxInspector, OnnxNotTrainable, load_onnx
from visualizer.core.snapshot import CaptureRequest

require("onnxruntime", "onnx")
require("onnxscript", "onnx")   # torch.onnx.export(dynamo=True) writes through it

COMPARED_KINDS = ("conv", "depthwise_conv", "pool", "activation", "norm", "linear")


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)
        self.a1 = nn.Tanh()
        self.s2 = nn.MaxPool2d(2)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.a3 = nn.Tanh()
        self.s4 = nn.AvgPool2d(2)
        self.flat = nn.Flatten()
        self.f5 = nn.Linear(16 * 5 * 5, 120)
        self.a5 = nn.ReLU()
        self.f6 = nn.Linear(120, 84)
        self.a6 = nn.LeakyReLU(0.1)
        self.f7 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.s2(self.a1(self.c1(x)))
        x = self.s4(self.a3(self.c3(x)))
        return self.f7(self.a6(self.f6(self.a5(self.f5(self.flat(x))))))


class BatchNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.flat(self.gap(self.pool(self.act(self.bn(self.conv(x)))))))


class ResidualNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.stem_act = nn.ReLU()
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.out_act = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.stem_act(self.stem(x))
        y = self.conv2(self.act1(self.conv1(x)))
        return self.fc(self.flat(self.gap(self.out_act(x + y))))   # the shortcut is an ONNX Add node


class DepthwiseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.expand = nn.Conv2d(3, 12, 1)
        self.act1 = nn.ReLU6()
        self.dw = nn.Conv2d(12, 12, 3, stride=2, padding=1, groups=12)
        self.act2 = nn.ReLU6()
        self.project = nn.Conv2d(12, 6, 1)
        self.sig = nn.Sigmoid()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = self.sig(self.project(self.act2(self.dw(self.act1(self.expand(x))))))
        return self.fc(self.flat(self.gap(x)))


class ChannelsLastNet(nn.Module):
    """Takes (N, H, W, C) as a Keras model converted by tf2onnx does, and transposes first."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.act = nn.ReLU()
        self.flat = nn.Flatten()
        self.fc = nn.Linear(4 * 14 * 14, 3)

    def forward(self, x):
        return self.fc(self.flat(self.act(self.conv(x.permute(0, 3, 1, 2)))))


SHAPES = {LeNet5: (1, 32, 32), BatchNormNet: (3, 16, 16), ResidualNet: (3, 12, 12), DepthwiseNet: (3, 16, 16)}


def _trained_looking(cls):
    torch.manual_seed(0)
    model = cls()
    if any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        model.train()
        with torch.no_grad():
            model(torch.randn(16, *SHAPES[cls]) * 2 + 0.5)   # running statistics away from 0/1
    return model.eval()


def export(model, shape, path, **kwargs):
    torch.onnx.export(model, (torch.zeros(1, *shape),), str(path), dynamo=True, verbose=False, **kwargs)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, ONNX path) per model class, exported once for the module; each in its own folder."""
    cache = {}

    def get(cls, **kwargs):
        key = (cls, tuple(sorted(kwargs.items())))
        if key not in cache:
            model = _trained_looking(cls)
            folder = tmp_path_factory.mktemp(cls.__name__.lower())
            cache[key] = (model, export(model, SHAPES[cls], folder / "model.onnx", **kwargs))
        return cache[key]
    return get


def image(shape, seed=1):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def both_snapshots(model, path, shape):
    """The PyTorch Inspector's and the OnnxInspector's snapshot of one image, everything captured."""
    x = image(shape)
    torch_bundle = ModelBundle(model=model, input_shape=shape, class_names=tuple(str(i) for i in range(10)))
    with Inspector(torch_bundle) as ti:
        convs = tuple(l.name for l in ti.info.of_kind("conv", "depthwise_conv"))
        t = ti.probe(CaptureRequest(layers=("*",), filter_layers=convs), x, label=2)
    with OnnxInspector(path) as oi:
        convs = tuple(l.name for l in oi.info.of_kind("conv", "depthwise_conv"))
        o = oi.probe(CaptureRequest(layers=("*",), filter_layers=convs), x, label=2)
        info = oi.info
    return t, o, info


def paired(t_records, o_records, t_kinds, o_kinds):
    """Records of the compared kinds, paired in execution order (ONNX node names differ from module names)."""
    ts = [r for r in t_records if t_kinds.get(r.name) in COMPARED_KINDS]
    os_ = [r for r in o_records if o_kinds.get(r.name) in COMPARED_KINDS]
    assert [t_kinds[r.name] for r in ts] == [o_kinds[r.name] for r in os_]
    return list(zip(ts, os_))


def assert_same_snapshot(t, o, info):
    t_kinds = {c.name: c.kind for c in t.layers}
    o_kinds = {l.name: l.kind for l in info.layers}
    pairs = paired(t.layers, o.layers, t_kinds, o_kinds)
    assert pairs
    for tc, oc in pairs:
        assert tc.shape == oc.shape, (tc.name, oc.name)
        if tc.maps is not None:
            np.testing.assert_allclose(oc.maps, tc.maps, rtol=1e-4, atol=1e-5, err_msg=f"{tc.name} vs {oc.name}")
            assert oc.channels == tc.channels and oc.mosaic.image.shape == tc.mosaic.image.shape
        else:
            np.testing.assert_allclose(oc.vector, tc.vector, rtol=1e-4, atol=1e-5, err_msg=f"{tc.name} vs {oc.name}")
        if tc.pool is not None:
            assert oc.pool is not None, oc.name
            assert (oc.pool.kernel, oc.pool.stride, oc.pool.padding, oc.pool.mode) == (
                tc.pool.kernel, tc.pool.stride, tc.pool.padding, tc.pool.mode)
            np.testing.assert_allclose(oc.pool.input_maps, tc.pool.input_maps, rtol=1e-4, atol=1e-5)
            if tc.pool.argmax is not None:
                np.testing.assert_array_equal(oc.pool.argmax, tc.pool.argmax)   # the same winners
    t_act = {a.name: "activation" for a in t.activations}
    o_act = {a.name: "activation" for a in o.activations}
    act_pairs = paired(t.activations, o.activations, t_act, o_act)
    assert len(act_pairs) == len(t.activations) > 0
    for ta, oa in act_pairs:
        assert oa.function == ta.function and dict(oa.params) == pytest.approx(dict(ta.params))
        assert oa.frac_dead == pytest.approx(ta.frac_dead, abs=1e-3)
        assert oa.frac_saturated == pytest.approx(ta.frac_saturated, abs=1e-3)
        assert (oa.out_mean, oa.out_std) == pytest.approx((ta.out_mean, ta.out_std), rel=1e-4, abs=1e-5)
        assert (oa.pre_min, oa.pre_max) == pytest.approx((ta.pre_min, ta.pre_max), rel=1e-4, abs=1e-5)
    np.testing.assert_allclose(o.probabilities, t.probabilities, rtol=1e-4, atol=1e-6)
    assert o.predicted == t.predicted and o.label == 2
    np.testing.assert_array_equal(o.input_image, t.input_image)


def assert_same_filters(t, o):
    assert len(o.filters) == len(t.filters) > 0
    for tf, of in zip(t.filters, o.filters):
        np.testing.assert_array_equal(of.weight, tf.weight)   # read from the initializers, bit for bit
        assert (of.in_channels, of.out_channels, of.groups) == (tf.in_channels, tf.out_channels, tf.groups)
        assert of.grad is None


def test_lenet5_matches_pytorch_layer_by_layer(exported):
    model, path = exported(LeNet5)
    t, o, info = both_snapshots(model, path, SHAPES[LeNet5])
    assert_same_snapshot(t, o, info)
    assert_same_filters(t, o)
    kinds = [l.kind for l in info.layers if l.kind in COMPARED_KINDS]
    assert kinds == ["conv", "activation", "pool", "conv", "activation", "pool", "linear", "activation",
                     "linear", "activation", "linear"]
    assert info.total_params == sum(p.numel() for p in model.parameters()) and info.num_outputs == 10
    assert info.by_name(info.of_kind("conv", "depthwise_conv")[0].name).detail == "5x5 s1 p0, 1→6"


def test_batchnorm_model_kept_as_nodes_matches_pytorch(exported):
    model, path = exported(BatchNormNet, optimize=False)      # BatchNormalization stays a node
    t, o, info = both_snapshots(model, path, SHAPES[BatchNormNet])
    assert "norm" in [l.kind for l in info.layers]
    assert_same_snapshot(t, o, info)
    assert_same_filters(t, o)


def test_batchnorm_folded_by_the_exporter_still_gives_the_same_maps(exported):
    """The default export folds BatchNorm into the conv: its output is PyTorch's BatchNorm output."""
    model, path = exported(BatchNormNet)
    x = image(SHAPES[BatchNormNet])
    bundle = load_onnx(path)
    assert "norm" not in [l.kind for l in bundle.info.layers]
    with OnnxInspector(bundle) as oi:
        conv = oi.info.of_kind("conv", "depthwise_conv")[0].name
        snap = oi.probe(CaptureRequest(layers=(conv,)), x)
    with torch.no_grad():
        expected = model.bn(model.conv(torch.from_numpy(x)[None]))[0].numpy()
        logits = model(torch.from_numpy(x)[None])[0]
    np.testing.assert_allclose(snap.layer(conv).maps, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(snap.probabilities, torch.softmax(logits, 0).numpy(), rtol=1e-4, atol=1e-6)


def test_residual_model_matches_pytorch(exported):
    model, path = exported(ResidualNet)
    t, o, info = both_snapshots(model, path, SHAPES[ResidualNet])
    assert "Add" in [l.type_name for l in info.layers]
    assert_same_snapshot(t, o, info)
    assert_same_filters(t, o)


def test_depthwise_model_matches_pytorch(exported):
    model, path = exported(DepthwiseNet)
    t, o, info = both_snapshots(model, path, SHAPES[DepthwiseNet])
    dw = [l for l in info.layers if l.kind == "depthwise_conv"]
    assert len(dw) == 1 and "groups=12" in dw[0].detail
    assert [a.function for a in o.activations] == ["relu6", "relu6", "sigmoid"]   # Clip(0, 6) is ReLU6
    assert_same_snapshot(t, o, info)
    assert_same_filters(t, o)


def test_channel_selection_and_filter_limits(exported):
    model, path = exported(ResidualNet)
    with OnnxInspector(path) as oi:
        conv = oi.info.of_kind("conv", "depthwise_conv")[1].name
        snap = oi.probe(CaptureRequest(layers=(conv,), filter_layers=(conv, "no such layer"), max_channels=3),
                        image(SHAPES[ResidualNet]))
        assert [c.name for c in snap.layers] == [conv]
        assert snap.layer(conv).maps.shape == (3, 12, 12) and snap.layer(conv).shape == (8, 12, 12)
        assert len(snap.filters) == 1 and snap.filters[0].weight.shape == (3, 8, 3, 3)
        assert not snap.filters[0].weight.flags.writeable
        initial = {conv: np.zeros((8, 8, 3, 3), np.float32)}
        (f,) = oi.capture_filters((conv,), initial=initial)
        np.testing.assert_array_equal(f.delta, f.weight)
        with pytest.raises(ModelError, match="shape"):
            oi.probe(CaptureRequest(), np.zeros((1, 5, 5), np.float32))


def test_channels_last_input_is_transposed_for_the_model(tmp_path):
    torch.manual_seed(3)
    model = ChannelsLastNet().eval()
    path = tmp_path / "keras_like.onnx"
    torch.onnx.export(model, (torch.zeros(1, 16, 16, 3),), str(path), dynamo=True, verbose=False)
    bundle = load_onnx(path)
    assert bundle.input_shape == (3, 16, 16) and any("channels-last" in w for w in bundle.warnings)
    x = image((3, 16, 16))
    with OnnxInspector(bundle) as oi:
        snap = oi.probe(CaptureRequest(layers=("*",)), x)
    with torch.no_grad():
        logits = model(torch.from_numpy(x).permute(1, 2, 0)[None])[0]
        conv = model.conv(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(snap.probabilities, torch.softmax(logits, 0).numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(snap.layer(bundle.info.of_kind("conv", "depthwise_conv")[0].name).maps, conv, rtol=1e-4, atol=1e-5)


def test_bundle_reports_the_model_and_refuses_training(exported):
    from visualizer.core.datasets import DataOptions, load_dataset, prepare
    from visualizer.core.training import Trainer

    _, path = exported(LeNet5)
    bundle = load_onnx(path)
    assert bundle.trainable is False and bundle.probeable and bundle.source == str(path)
    assert bundle.input_shape == (1, 32, 32) and bundle.class_names == tuple("0123456789")
    assert bundle.mean == (0.0,) and bundle.std == (1.0,)
    assert bundle.meta["producer"].startswith("pytorch") and bundle.meta["opset"] >= 18
    assert any("inspection only" in w for w in bundle.warnings)
    with pytest.raises(OnnxNotTrainable, match="training an ONNX model is not offered"):
        _ = bundle.model
    data = prepare(load_dataset("digits", limit=40), DataOptions(input_shape=bundle.input_shape))
    with pytest.raises(OnnxNotTrainable, match=str(path)):
        Trainer(bundle, data)                   # the app's trainer refuses it with the same message
    with OnnxInspector(bundle) as oi, pytest.raises(OnnxNotTrainable):
        oi.gradient_stats()


def test_info_command_prints_the_onnx_layer_table(exported, capsys):
    from visualizer.cli import main

    _, path = exported(DepthwiseNet)
    assert main(["info", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "depthwise_conv" in out and "groups=12" in out and "relu6" in out
    assert out.strip().splitlines()[-1].startswith("input 3×16×16, ")
    assert "inspection only" in err


def test_open_image_size_is_guessed_and_can_be_given(tmp_path):
    """A fully convolutional export with dynamic batch and spatial size (as tf2onnx writes Keras models)."""
    from torch.export import Dim

    model = _trained_looking(DepthwiseNet)
    path = tmp_path / "dynamic.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 16, 16),), str(path), dynamo=True, verbose=False,
                      dynamic_shapes={"x": {0: Dim("batch"), 2: Dim("h", min=8, max=512), 3: Dim("w", min=8, max=512)}})
    guessed = load_onnx(path)
    assert guessed.input_shape == (3, 224, 224)
    assert any("leaves the image size open: using 224x224" in w for w in guessed.warnings)
    guessed.graph.runner.close()
    given = load_onnx(path, input_shape=(3, 40, 40))
    assert given.input_shape == (3, 40, 40) and not any("image size" in w for w in given.warnings)
    x = image((3, 40, 40))
    with OnnxInspector(given) as oi:
        snap = oi.probe(CaptureRequest(layers=(oi.info.of_kind("depthwise_conv")[0].name,)), x)
    with torch.no_grad():
        expected = model.dw(model.act1(model.expand(torch.from_numpy(x)[None])))[0].numpy()
    np.testing.assert_allclose(snap.layers[0].maps, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(LoadError, match="does not fit the model's input"):
        load_onnx(path, input_shape=(1, 40, 40))
