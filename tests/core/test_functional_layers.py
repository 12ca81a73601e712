"""Layers written as calls in ``forward`` (F.conv2d, F.max_pool2d, torch.flatten, x + identity) are
steps of the model: listed, captured as the real intermediate tensors, pooled with the true
winners, their filters the model's own Parameters. The models are written the way the common
tutorials write them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from visualizer.core.health.measure import BatchActivationObserver
from visualizer.core.inspector import Inspector
from visualizer.core.introspect import introspect
from visualizer.core.model_bundle import ModelBundle
from visualizer.core.probe import Probe
from visualizer.core.snapshot import CaptureRequest


class CifarTutorialNet(nn.Module):
    """The PyTorch tutorial's LeNet-like net, on 3-channel 32x32 CIFAR images."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class MnistExampleNet(nn.Module):
    """pytorch/examples mnist/main.py."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


class FunctionalOnlyNet(nn.Module):
    """No layer modules at all: Parameters and calls."""

    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(8, 3, 3, 3) * 0.3)
        self.b1 = nn.Parameter(torch.randn(8) * 0.1)
        self.w2 = nn.Parameter(torch.randn(16, 8, 3, 3) * 0.2)
        self.fc_w = nn.Parameter(torch.randn(10, 16 * 2 * 2) * 0.1)
        self.fc_b = nn.Parameter(torch.zeros(10))

    def forward(self, x):
        x = F.relu(F.conv2d(x, self.w1, self.b1, stride=2, padding=1))
        x = F.avg_pool2d(x, 2)
        x = F.relu(F.conv2d(x, self.w2, padding=1))
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        x = x.view(x.size(0), -1)
        return F.linear(x, self.fc_w, self.fc_b)


class BasicBlock(nn.Module):
    def __init__(self, c, inplace_add=False):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.inplace_add = inplace_add

    def forward(self, x):
        identity = x
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.inplace_add:
            out += identity            # torchvision's form
        else:
            out = out + identity
        return F.relu(out)


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layer1 = BasicBlock(8)
        self.layer2 = BasicBlock(8, inplace_add=True)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = self.layer2(self.layer1(x))
        x = F.adaptive_avg_pool2d(x, 1)
        x = x.reshape(x.size(0), -1)
        return self.fc(x)


def probe_snapshot(model, shape, seed=0):
    """One Inspector pass on a random image (normalisation: identity, so the model sees the image as is)."""
    torch.manual_seed(seed)
    image = torch.rand(shape)
    bundle = ModelBundle(model, shape, tuple(str(i) for i in range(10)), mean=(0.0,) * shape[0],
                         std=(1.0,) * shape[0])
    with Inspector(bundle) as inspector:
        convs = tuple(n for n, _ in inspector.conv_layers)
        snap = inspector.probe(CaptureRequest(layers=("*",), filter_layers=convs, max_channels=64),
                               image.numpy())
        info = inspector.info
    return info, snap, image[None]


def maps_of(snap, name) -> np.ndarray:
    cap = snap.layer(name)
    assert cap is not None, f"{name} not captured: {[c.name for c in snap.layers]}"
    return cap.maps if cap.maps is not None else cap.vector


def check_winners(pool, out_maps, kernel, stride, padding):
    """Every max-pooling winner is the true argmax of its window (brute force over the padded input)."""
    assert pool.mode == "max" and pool.kernel == kernel and pool.stride == stride and pool.padding == padding
    x = pool.input_maps
    c, hi, wi = x.shape
    padded = np.full((c, hi + 2 * padding[0], wi + 2 * padding[1]), -np.inf, np.float32)
    padded[:, padding[0]:padding[0] + hi, padding[1]:padding[1] + wi] = x
    for ch in range(out_maps.shape[0]):
        for i in range(out_maps.shape[1]):
            for j in range(out_maps.shape[2]):
                y0, x0 = i * stride[0], j * stride[1]
                window = padded[ch, y0:y0 + kernel[0], x0:x0 + kernel[1]]
                wy, wx = np.unravel_index(int(np.argmax(window)), window.shape)
                true_flat = (y0 + wy - padding[0]) * wi + (x0 + wx - padding[1])
                assert x.reshape(c, -1)[ch, pool.argmax[ch, i, j]] == window.max() == out_maps[ch, i, j]
                if np.sum(window == window.max()) == 1:          # unique maximum: the very position
                    assert pool.argmax[ch, i, j] == true_flat


def test_cifar_tutorial_net_lists_its_functional_pools_and_flatten():
    info = introspect(CifarTutorialNet(), (3, 32, 32))
    assert info.names() == ("conv1", "F.relu", "F.max_pool2d", "conv2", "F.relu_1", "F.max_pool2d_1",
                            "F.flatten", "fc1", "F.relu_2", "fc2", "F.relu_3", "fc3")
    pool = info.by_name("F.max_pool2d")
    assert pool.functional and pool.kind == "pool" and pool.type_name == "F.max_pool2d"
    assert pool.output_shape == (6, 14, 14) and pool.detail.startswith("max 2x2 s2")
    assert "called in forward" in pool.detail
    flat = info.by_name("F.flatten")
    assert flat.kind == "other" and flat.output_shape == (400,) and flat.call_args == (("start_dim", 1),
                                                                                      ("end_dim", -1))


def test_cifar_tutorial_net_maps_and_max_winners_are_the_real_ones():
    model = CifarTutorialNet().eval()
    _info, snap, x = probe_snapshot(model, (3, 32, 32))
    with torch.no_grad():
        r1 = F.relu(model.conv1(x))
        p1 = F.max_pool2d(r1, 2)
        p2 = F.max_pool2d(F.relu(model.conv2(p1)), 2)
    np.testing.assert_allclose(maps_of(snap, "F.relu"), r1[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps_of(snap, "F.max_pool2d"), p1[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps_of(snap, "F.max_pool2d_1"), p2[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps_of(snap, "F.flatten"), torch.flatten(p2, 1)[0].numpy(), rtol=1e-5, atol=1e-6)
    cap = snap.layer("F.max_pool2d")
    np.testing.assert_allclose(cap.pool.input_maps, r1[0].numpy(), rtol=1e-5, atol=1e-6)
    check_winners(cap.pool, cap.maps, (2, 2), (2, 2), (0, 0))
    assert [f.name for f in snap.filters] == ["conv1", "conv2"]


def test_mnist_example_net_log_softmax_and_pool():
    model = MnistExampleNet().eval()
    info, snap, x = probe_snapshot(model, (1, 28, 28))
    assert info.by_name("F.max_pool2d").output_shape == (64, 12, 12)
    assert info.by_name("F.log_softmax").kind == "activation" and info.by_name("F.log_softmax").activation == \
        "log_softmax"
    assert info.names().index("conv2") < info.names().index("F.max_pool2d") < info.names().index("dropout1")
    with torch.no_grad():
        pooled = F.max_pool2d(F.relu(model.conv2(F.relu(model.conv1(x)))), 2)
    cap = snap.layer("F.max_pool2d")
    np.testing.assert_allclose(cap.maps, pooled[0].numpy(), rtol=1e-5, atol=1e-6)
    check_winners(cap.pool, cap.maps[:4], (2, 2), (2, 2), (0, 0))
    assert any(a.name == "F.log_softmax" and a.function == "log_softmax" for a in snap.activations)


def test_functional_only_net_is_a_full_model():
    model = FunctionalOnlyNet().eval()
    info, snap, x = probe_snapshot(model, (3, 16, 16))
    assert info.names() == ("F.conv2d", "F.relu", "F.avg_pool2d", "F.conv2d_1", "F.relu_1", "F.max_pool2d",
                            "F.view", "F.linear")
    conv = info.by_name("F.conv2d")
    assert conv.kind == "conv" and conv.weight == "w1" and conv.bias == "b1" and conv.params == 8 * 27 + 8
    assert conv.detail.startswith("3x3 s2 p1, 3→8 (w1)") and conv.output_shape == (8, 8, 8)
    assert dict(conv.call_args)["stride"] == 2 and dict(conv.call_args)["padding"] == 1
    assert info.by_name("F.conv2d_1").weight == "w2" and info.by_name("F.conv2d_1").bias is None
    assert info.by_name("F.linear").kind == "linear" and info.by_name("F.linear").detail.startswith("64 → 10")
    assert info.by_name("F.view").output_shape == (64,)
    with torch.no_grad():
        c1 = F.conv2d(x, model.w1, model.b1, stride=2, padding=1)
        a1 = F.avg_pool2d(F.relu(c1), 2)
        r2 = F.relu(F.conv2d(a1, model.w2, padding=1))
        m2 = F.max_pool2d(r2, 3, 2, 1)
        logits = F.linear(m2.view(1, -1), model.fc_w, model.fc_b)
    np.testing.assert_allclose(maps_of(snap, "F.conv2d"), c1[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps_of(snap, "F.avg_pool2d"), a1[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps_of(snap, "F.linear"), logits[0].numpy(), rtol=1e-5, atol=1e-6)
    avg = snap.layer("F.avg_pool2d").pool
    assert avg.mode == "avg" and avg.kernel == (2, 2) and avg.stride == (2, 2) and avg.argmax is None
    mx = snap.layer("F.max_pool2d")
    check_winners(mx.pool, mx.maps, (3, 3), (2, 2), (1, 1))
    # the filters are the Parameters the calls were given
    filters = {f.name: f for f in snap.filters}
    assert list(filters) == ["F.conv2d", "F.conv2d_1"]
    np.testing.assert_array_equal(filters["F.conv2d"].weight, model.w1.detach().numpy())
    np.testing.assert_array_equal(filters["F.conv2d_1"].weight, model.w2.detach().numpy())
    assert (filters["F.conv2d_1"].in_channels, filters["F.conv2d_1"].out_channels) == (8, 16)


def test_functional_weights_have_gradients_like_modules():
    model = FunctionalOnlyNet()
    bundle = ModelBundle(model, (3, 16, 16), tuple(str(i) for i in range(10)))
    with Inspector(bundle) as inspector:
        assert [n for n, _ in inspector.weighted_layers] == ["F.conv2d", "F.conv2d_1", "F.linear"]
        F.cross_entropy(model(torch.rand(4, 3, 16, 16)), torch.tensor([0, 1, 2, 3])).backward()
        stats = {g.name: g for g in inspector.gradient_stats()}
    assert stats["F.conv2d"].weight_norm == pytest.approx(float(model.w1.grad.norm()), rel=1e-5)
    assert stats["F.conv2d"].bias_norm == pytest.approx(float(model.b1.grad.norm()), rel=1e-5)
    assert stats["F.conv2d_1"].bias_norm is None
    assert stats["F.linear"].weight_l2 == pytest.approx(float(model.fc_w.detach().norm()), rel=1e-5)


@pytest.mark.parametrize("block", ["layer1", "layer2"])
def test_residual_adds_are_listed_and_captured(block):
    model = SmallResNet().eval()
    info, snap, x = probe_snapshot(model, (3, 8, 8))
    names = info.names()
    add = info.by_name(f"{block}.F.add")
    assert add is not None and add.functional and add.parent == block and add.detail.startswith("x + shortcut")
    assert names.index(f"{block}.bn2") < names.index(f"{block}.F.add") < names.index(f"{block}.F.relu_1")
    assert info.by_name("F.adaptive_avg_pool2d").kind == "pool" and info.by_name("F.reshape").output_shape == (8,)
    with torch.no_grad():
        h = F.relu(model.stem(x))
        if block == "layer2":
            h = model.layer1(h)
        b = getattr(model, block)
        expected = b.bn2(b.conv2(F.relu(b.bn1(b.conv1(h))))) + h
    np.testing.assert_allclose(maps_of(snap, f"{block}.F.add"), expected[0].numpy(), rtol=1e-5, atol=1e-5)


def test_adds_that_are_not_residual_connections_are_not_layers():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.pos = nn.Parameter(torch.zeros(1, 4, 6, 6))
            self.register_buffer("mean", torch.tensor([0.5]))

        def forward(self, x):
            x = (x - self.mean.view(1, 1, 1, 1)) + 1.0     # a scalar add; a view of a buffer
            y = self.conv(x) + self.pos                    # a Parameter added
            return y.flatten(1)

    info = introspect(Net(), (1, 6, 6))
    assert info.names() == ("conv", "F.flatten")


def test_the_probes_own_work_and_a_loss_are_not_layers():
    """A batch observer (the health report's) reshapes inside the hooks; a loss is computed inside the mode."""
    model = SmallResNet()
    info = introspect(model, (3, 8, 8))
    observer = BatchActivationObserver({l.name: l.activation for l in info.layers if l.kind == "activation"})
    with Probe(model, info) as probe:
        probe.arm("*", batch_observer=observer)
        with probe.functional():
            loss = F.cross_entropy(model(torch.rand(4, 3, 8, 8)).reshape(4, -1), torch.tensor([0, 1, 2, 3]))
            loss = loss + loss.detach() * 0
        loss.backward()
        probe.disarm()
        seen = set(probe.captured_names())
    assert seen <= set(info.names()) and "layer1.F.add" in seen
    assert set(observer.take()) == {"F.relu", "layer1.F.relu", "layer1.F.relu_1", "layer2.F.relu", "layer2.F.relu_1"}


def test_a_model_without_functional_layers_never_enters_the_mode():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 3))
    with Probe(model, introspect(model, (1, 8, 8))) as probe:
        probe.arm("*")
        assert type(probe.functional()).__name__ == "nullcontext"
