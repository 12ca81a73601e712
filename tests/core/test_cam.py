"""Class activation maps: CAM and Grad-CAM against direct computations, on trained models, and harmless to training."""
from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from visualizer.core.assemble import data_for
from visualizer.core.checkpoint import load_model
from visualizer.core.datasets import load_dataset
from visualizer.core.explain.cam import cam, cam_for_bundle, class_activation_map, grad_cam, supports_cam
from visualizer.core.explain.capture import model_input
from visualizer.core.explain.records import ExplainError, default_grad_cam_layer, grad_cam_layers
from visualizer.core.introspect import introspect

MODELS = Path(__file__).resolve().parents[2] / "models"


def gap_net(mean_in_forward: bool = False) -> nn.Module:
    """conv-relu-conv-relu, global average pooling (a module, or torch.mean in forward), one Linear."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 8, 5, stride=2, padding=2), nn.ReLU(),
                                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            f = self.features(x)
            g = f.mean(dim=(2, 3)) if mean_in_forward else self.pool(f).flatten(1)
            return self.fc(g)
    return Net()


def expected_heatmap(raw: torch.Tensor, size) -> np.ndarray:
    raw = torch.relu(raw)
    up = F.interpolate(raw[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    return (up / up.max()).numpy() if up.max() > 0 else np.zeros(size, np.float32)


def digits(n: int = 40, seed: int = 1):
    ds = load_dataset("mnist", seed=0)
    idx = np.random.default_rng(seed).choice(len(ds), n, replace=False)
    return [(ds.images[i].astype(np.float32) / 255.0, int(ds.labels[i])) for i in idx]


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


def heat_on_strokes(heat: np.ndarray, image01: np.ndarray) -> tuple[float, float]:
    """(share of the heat within 2 pixels of a stroke, share of the image that region covers)."""
    near = dilate(image01[0] > 0.3, 2)
    return float(heat[near].sum() / max(heat.sum(), 1e-12)), float(near.mean())


# ------------------------------------------------------------------ CAM

@pytest.mark.parametrize("mean_in_forward", [False, True])
def test_cam_is_the_last_maps_weighted_by_the_class_weights(mean_in_forward):
    torch.manual_seed(0)
    net = gap_net(mean_in_forward).eval()
    x = np.random.default_rng(0).normal(size=(1, 20, 20)).astype(np.float32)
    with torch.no_grad():
        f = net.features(torch.from_numpy(x)[None])[0]               # (16, 10, 10): the maps that are averaged
        logits = net(torch.from_numpy(x)[None])[0]
    for c in (None, 3, 7):
        r = cam(net, x, class_index=c)
        want_c = int(logits.argmax()) if c is None else c
        direct = (net.fc.weight.detach()[want_c][:, None, None] * f).sum(0)
        assert r.method == "cam" and r.class_index == want_c and r.layer == r.source_layer == "features"
        assert np.allclose(r.raw, torch.relu(direct).numpy(), atol=1e-5)
        assert np.allclose(r.heatmap, expected_heatmap(direct, (20, 20)), atol=1e-5)
        assert r.heatmap.shape == (20, 20) and r.heatmap.min() >= 0 and r.heatmap.max() == pytest.approx(1.0)
        assert r.score == pytest.approx(float(logits[want_c]), abs=1e-5)
        assert r.predicted == int(logits.argmax()) and r.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_cam_and_grad_cam_agree_where_both_apply():
    torch.manual_seed(1)
    net = gap_net().eval()
    x = np.random.default_rng(1).normal(size=(1, 16, 16)).astype(np.float32)
    for c in range(10):
        a = cam(net, x, class_index=c)
        b = grad_cam(net, x, layer="features.2", class_index=c)     # conv whose (in-place) ReLU is pooled
        assert b.source_layer == "features.3"
        assert np.allclose(a.heatmap, b.heatmap, atol=1e-5)


def test_cam_refuses_a_model_without_global_average_pooling():
    lenet = load_model(MODELS / "lenet5_mnist.pt").model
    x = np.zeros((1, 32, 32), np.float32)
    assert not supports_cam(lenet, x)
    with pytest.raises(ExplainError, match=r"'output' takes 84 inputs that are not the global average.*use Grad-CAM"):
        cam(lenet, x)
    assert class_activation_map(lenet, x).method == "grad-cam"     # "auto" falls back


# ------------------------------------------------------------------ Grad-CAM

class ConvBnNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2)
        self.head = nn.Linear(8 * 7 * 7, 5)                           # position-specific: not a GAP model

    def forward(self, x):
        a = F.relu(self.bn1(self.conv1(x)))
        b = torch.tanh(self.conv2(a))
        return self.head(b.flatten(1))


def test_grad_cam_equals_a_manual_autograd_computation():
    torch.manual_seed(2)
    net = ConvBnNet()
    net.bn1.running_mean.uniform_(-0.5, 0.5)
    net.eval()
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(1, 16, 16)).astype(np.float32))
    with torch.enable_grad():
        a = F.relu(net.bn1(net.conv1(x[None])))
        maps = torch.tanh(net.conv2(a))                              # Grad-CAM's maps: conv2 after its tanh
        logits = net.head(maps.flatten(1))[0]
    for c in range(5):
        (g,) = torch.autograd.grad(logits[c], maps, retain_graph=True)
        manual = (g[0].mean(dim=(1, 2))[:, None, None] * maps[0]).sum(0).detach()
        r = grad_cam(net, x, layer="conv2", class_index=c)
        assert r.method == "grad-cam" and r.layer == "conv2" and r.source_layer == "F.tanh"
        assert np.allclose(r.raw, torch.relu(manual).numpy(), atol=1e-6)
        assert np.allclose(r.heatmap, expected_heatmap(manual, (16, 16)), atol=1e-5)


def test_looking_leaves_training_state_alone():
    torch.manual_seed(3)
    net = ConvBnNet()
    net.train()
    net.conv2.eval()                                                 # a user's own mix of modes is kept
    x = torch.randn(8, 1, 16, 16)
    F.cross_entropy(net(x), torch.zeros(8, dtype=torch.long)).backward()   # grads of a training step in flight
    net.head.weight.grad = None                                      # ...and one parameter without a grad
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in net.named_parameters()}
    state = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    for layer in ("conv1", "conv2"):
        grad_cam(net, x[0], layer=layer)
    assert [m.training for m in net.modules()] == modes
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())        # BatchNorm statistics too
    for n, p in net.named_parameters():
        assert (p.grad is None) if grads[n] is None else torch.equal(p.grad, grads[n]), n
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_grad_cam_layer_choices_and_errors():
    lenet = load_model(MODELS / "lenet5_mnist.pt").model
    info = introspect(lenet, (1, 32, 32))
    assert grad_cam_layers(info) == ("C1", "C3") and default_grad_cam_layer(info) == "C3"   # C5 is 1x1
    x = np.zeros((1, 32, 32), np.float32)
    assert grad_cam(lenet, x).layer == "C3"
    with pytest.raises(ExplainError, match=r"no layer named 'C9'.*C1, C3, C5"):
        grad_cam(lenet, x, layer="C9")
    with pytest.raises(ExplainError, match=r"'F6' gives an output of shape \(1, 84\)"):
        grad_cam(lenet, x, layer="F6")
    with pytest.raises(ExplainError, match=r"class 10 is out of range: the model has classes 0..9"):
        grad_cam(lenet, x, class_index=10)
    with pytest.raises(ExplainError, match="unknown method"):
        class_activation_map(lenet, x, method="lime")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in lenet.modules())


# ------------------------------------------------------------------ real, trained models

def test_grad_cam_of_trained_lenet_lies_on_the_strokes():
    bundle = load_model(MODELS / "lenet5_mnist.pt")
    data = data_for(bundle, load_dataset("mnist", seed=0), val_fraction=0.2, seed=0, reuse_normalisation=True)
    shares, areas, right = [], [], 0
    for i in range(40):                                              # held-out digits the model never trained on
        image01, label = data.sample(i)
        r = cam_for_bundle(bundle, image01, method="grad-cam", layer="C1")
        assert r.class_index == r.predicted and r.class_name == str(r.predicted)
        right += r.predicted == label
        s, a = heat_on_strokes(r.heatmap, image01)
        shares.append(s)
        areas.append(a)
    assert right >= 38
    # ~0.8 of the heat lies within 2 pixels of a stroke, a region covering ~0.37 of the image.
    assert np.median(shares) > 0.65 and np.median(areas) < 0.45
    assert np.mean(np.array(shares) > np.array(areas)) >= 0.75


def test_cam_of_a_trained_gap_network_lies_on_the_strokes():
    torch.manual_seed(0)
    ds = load_dataset("mnist", seed=0)
    x = torch.from_numpy(ds.images.astype(np.float32) / 255.0)
    y = torch.from_numpy(ds.labels.copy())
    net = nn.Sequential(nn.Conv2d(1, 8, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), 5e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        idx = torch.randint(0, 8000, (64,), generator=g)
        opt.zero_grad()
        F.cross_entropy(net(x[idx]), y[idx]).backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        assert (net(x[8000:]).argmax(1) == y[8000:]).float().mean() > 0.5   # ~0.67 after 300 steps; chance 0.1
    shares, areas = [], []
    for i in range(8000, 8040):
        r = cam(net, x[i].numpy())
        assert r.layer == "5"                                         # the ReLU whose maps are averaged
        s, a = heat_on_strokes(r.heatmap, x[i].numpy())
        shares.append(s)
        areas.append(a)
    assert np.median(shares) > 0.7 and np.mean(np.array(shares) > np.array(areas)) >= 0.9   # ~0.87 vs ~0.46


# ------------------------------------------------------------------ memory

@pytest.mark.slow
def test_thousands_of_updates_do_not_grow_memory():
    """Live during training: a Grad-CAM per update, the weights changing every tenth, 4,000 times.

    Python allocations grow ~45 KB once over the measured 3,000 (caches), whatever their number:
    the 128 KB bound fails for anything kept per update from ~28 bytes on. (It measured 9,000
    under tracemalloc, 70 s of the suite, against a 256 KB bound: the same ~28 bytes.)
    """
    psutil = pytest.importorskip("psutil")
    bundle = load_model(MODELS / "lenet5_mnist.pt")
    model = bundle.model
    data = data_for(bundle, load_dataset("mnist", seed=0, limit=512), val_fraction=0.5, seed=0,
                    reuse_normalisation=True)
    images = [model_input(data.sample(i)[0], bundle.mean, bundle.std) for i in range(16)]
    batch = torch.stack([data.train[i][0] for i in range(32)])
    labels = torch.tensor([int(data.train[i][1]) for i in range(32)])
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    proc = psutil.Process()

    def update(i: int) -> None:
        if i % 10 == 0:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(batch), labels).backward()
            opt.step()
        r = grad_cam(model, images[i % 16], layer="C3" if i % 2 else "C1", class_index=i % 10)
        assert r.heatmap.shape == (32, 32)

    model.train()
    for i in range(1000):                                            # warm-up: allocator pools, caches
        update(i)
    gc.collect()
    tracemalloc.start()
    base_py = tracemalloc.take_snapshot()
    base_rss = proc.memory_info().rss
    for i in range(1000, 4000):
        update(i)
    gc.collect()
    grown_py = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(base_py, "filename"))
    tracemalloc.stop()
    grown_rss = proc.memory_info().rss - base_rss
    assert grown_py < 128 * 1024, grown_py                           # Python objects: flat
    assert grown_rss < 16 * 2**20, grown_rss                         # the process: flat (torch's tensors included)
    assert model.training and all(not m._forward_hooks for m in model.modules())


def test_cam_record_travels_as_a_record_without_pickle():
    from visualizer.core.record.encoding import decode_record, encode_record
    bundle = load_model(MODELS / "lenet5_mnist.pt")
    image01 = np.zeros(bundle.input_shape, np.float32)
    image01[0, 8:24, 14:18] = 1.0
    r = cam_for_bundle(bundle, image01, layer="C1")
    back = decode_record(encode_record(r, compact=False))
    assert np.array_equal(back.heatmap, r.heatmap) and np.array_equal(back.input_image, r.input_image)
    assert (back.method, back.layer, back.source_layer, back.class_index, back.class_names) == \
        (r.method, r.layer, r.source_layer, r.class_index, r.class_names)
