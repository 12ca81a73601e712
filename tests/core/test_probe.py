import gc
import weakref

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from visualizer.core.introspect import introspect
from visualizer.core.probe import Probe
from visualizer.core.snapshot import CaptureRequest


def tiny_inplace():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(inplace=True),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))


class FunctionalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 8 * 8, 4)

    def forward(self, x):
        x = F.relu(self.conv(x), inplace=True)
        x = torch.sigmoid(x * 4 - 2)
        return self.fc(x.flatten(1))


def run(model, probe, x, layers="*", sample_index=0, max_channels=64, backward=True):
    probe.arm(layers, sample_index=sample_index, max_channels=max_channels, track_nonfinite=True)
    with probe.functional():
        out = model(x)
    if backward:
        out.sum().backward()
    probe.disarm()
    return probe.collect()


def test_hooks_removed_on_close_and_exit():
    model = tiny_inplace()
    info = introspect(model, (1, 8, 8))
    probe = Probe(model, info)
    assert any(m._forward_hooks for m in model.modules())
    probe.close()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    with Probe(model, info):
        assert model[0]._forward_hooks
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_disarmed_probe_captures_nothing():
    model = tiny_inplace()
    with Probe(model, introspect(model, (1, 8, 8))) as probe:
        with probe.functional():
            model(torch.randn(2, 1, 8, 8)).sum().backward()
        assert probe.collect() == ((), ())
        assert probe.act_grad_norms() == {}
        assert probe.first_nonfinite_layer() is None
        assert probe.captured_names() == ()


def test_inplace_relu_pre_activation_and_output():
    model = tiny_inplace()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        conv_ref = model[0](x)[1]
    with Probe(model, introspect(model, (1, 8, 8))) as probe:
        caps, stats = run(model, probe, x, sample_index=1)
    conv = next(c for c in caps if c.name == "0")
    relu = next(c for c in caps if c.name == "1")
    # the conv output was cloned before the in-place ReLU overwrote it
    assert conv.maps.min() < 0
    np.testing.assert_allclose(conv.maps, conv_ref.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(relu.maps, conv_ref.clamp(min=0).numpy(), rtol=1e-5, atol=1e-6)
    st = next(s for s in stats if s.name == "1")
    assert st.function == "relu" and st.pre_min < 0 < st.pre_max
    np.testing.assert_allclose(st.pre_min, conv_ref.min().item(), rtol=1e-5)
    assert st.frac_dead == pytest.approx(float((conv_ref <= 0).float().mean()), abs=1e-6)


def test_captures_in_execution_order_bounded_channels_and_read_only():
    model = tiny_inplace()
    with Probe(model, introspect(model, (1, 8, 8))) as probe:
        caps, stats = run(model, probe, torch.randn(2, 1, 8, 8), max_channels=2)
    assert [c.name for c in caps] == ["0", "1", "2", "3", "4", "5", "6", "7"]
    c3 = caps[3]
    assert c3.shape == (6, 4, 4) and c3.maps.shape == (2, 4, 4) and c3.channels == (0, 1)
    assert c3.mosaic.image.shape == (4, 9) and c3.channel_levels.shape == (2, 2)
    assert not c3.maps.flags.writeable and not c3.mosaic.image.flags.writeable
    lin = caps[-1]
    assert lin.maps is None and lin.vector.shape == (3,) and lin.shape == (3,)
    assert [s.name for s in stats] == ["1", "4"]


def test_selected_layers_only_and_capture_request():
    model = tiny_inplace()
    with Probe(model, introspect(model, (1, 8, 8))) as probe:
        caps, stats = run(model, probe, torch.randn(2, 1, 8, 8), layers={"3"})
        assert [c.name for c in caps] == ["3"]
        assert len(stats) == 2   # statistics of every activation, whatever is selected
        probe.arm(CaptureRequest(layers=("0", "2"), max_channels=1))
        model(torch.randn(2, 1, 8, 8))
        probe.disarm()
        caps, _ = probe.collect()
        assert [c.name for c in caps] == ["0", "2"] and caps[0].maps.shape[0] == 1


def test_no_autograd_graph_retained():
    model = tiny_inplace()
    with Probe(model, introspect(model, (1, 8, 8))) as probe:
        x = torch.randn(2, 1, 8, 8)
        ref = weakref.ref(x)   # conv saves its input for backward: alive as long as the graph is
        probe.arm("*")
        out = model(x)
        probe.disarm()
        k = probe._kept
        held = [*k.outs.values(), *k.pre.values(), *k.act_out.values(), *k.pool_in.values()]
        assert held and all(t.grad_fn is None and not t.requires_grad for t in held)
        del out, x, held
        gc.collect()
        assert ref() is None
        probe.collect()


def test_memory_stable_over_armed_steps():
    psutil = pytest.importorskip("psutil")
    model = tiny_inplace()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    proc = psutil.Process()
    with Probe(model, introspect(model, (1, 16, 16))) as probe:
        def step():
            x = torch.randn(8, 1, 16, 16)
            opt.zero_grad()
            run(model, probe, x)
            probe.act_grad_norms()
            opt.step()
        for _ in range(20):
            step()
        gc.collect()
        before = proc.memory_info().rss
        for _ in range(200):
            step()
        gc.collect()
        grown = proc.memory_info().rss - before
    assert grown < 8 * 2**20, f"RSS grew {grown / 2**20:.1f} MB over 200 armed steps"


def test_functional_activations_captured_with_info_names():
    model = FunctionalNet()
    info = introspect(model, (1, 8, 8))
    assert [l.name for l in info.layers if l.functional] == ["F.relu", "F.sigmoid", "F.flatten"]
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        pre_relu = model.conv(x)[0]
        y = torch.sigmoid(pre_relu.clamp(min=0) * 4 - 2)
    with Probe(model, info) as probe:
        caps, stats = run(model, probe, x)
    names = [c.name for c in caps]
    assert names == ["conv", "F.relu", "F.sigmoid", "F.flatten", "fc"]
    relu = next(s for s in stats if s.name == "F.relu")
    assert relu.function == "relu" and relu.pre_min < 0   # pre captured before inplace=True
    np.testing.assert_allclose(relu.pre_min, pre_relu.min().item(), rtol=1e-5)
    sig = next(s for s in stats if s.name == "F.sigmoid")
    assert sig.function == "sigmoid"
    assert sig.frac_saturated == pytest.approx(float(((y < 0.01) | (y > 0.99)).float().mean()), abs=1e-6)
    np.testing.assert_allclose(next(c for c in caps if c.name == "F.sigmoid").maps, y.numpy(), rtol=1e-5)


def test_functional_mode_is_noop_when_disarmed():
    model = FunctionalNet()
    with Probe(model, introspect(model, (1, 8, 8))) as probe:
        ctx = probe.functional()
        with ctx:
            model(torch.randn(1, 1, 8, 8))
        assert probe.collect() == ((), ())


def test_maxpool_argmax_points_at_maxima():
    model = tiny_inplace()
    x = torch.randn(2, 1, 8, 8)
    with Probe(model, introspect(model, (1, 8, 8))) as probe:
        caps, _ = run(model, probe, x, layers={"2", "5"})
    pool = caps[0]
    pc = pool.pool
    assert pc.mode == "max" and pc.kernel == (2, 2) and pc.stride == (2, 2) and pc.padding == (0, 0)
    assert pc.input_maps.shape == (4, 8, 8) and pc.argmax.shape == (4, 4, 4) and pc.argmax.dtype == np.int32
    for c in range(4):
        winners = pc.input_maps[c].ravel()[pc.argmax[c]]
        np.testing.assert_array_equal(winners, pool.maps[c])
        # each winner lies inside its own 2x2 window
        ys, xs = np.divmod(pc.argmax[c], 8)
        assert (ys // 2 == np.arange(4)[:, None]).all() and (xs // 2 == np.arange(4)[None, :]).all()
    avg = caps[1].pool
    assert avg.mode == "avg" and avg.argmax is None and avg.kernel == (4, 4)


def test_activation_stats_on_known_input():
    model = nn.Sequential(nn.ReLU())
    info = introspect(model, (1, 2, 4))
    x = torch.tensor([[-3.0, -1.0, 0.0, 2.0], [4.0, -2.0, 1.0, 6.0]]).reshape(1, 1, 2, 4)
    with Probe(model, info) as probe:
        _, (st,) = run(model, probe, x, backward=False)
    assert st.pre_min == -3.0 and st.pre_max == 6.0
    assert st.frac_dead == pytest.approx(4 / 8)        # three negatives and one exact zero
    out = np.maximum(x.numpy(), 0)
    assert st.out_mean == pytest.approx(out.mean()) and st.out_std == pytest.approx(out.std())
    assert st.pre.counts.sum() == 8 and st.pre.edges[0] == -3.0 and st.pre.edges[-1] == 6.0
    expected, _ = np.histogram(x.numpy().ravel(), bins=len(st.pre.counts), range=(-3.0, 6.0))
    assert st.pre.counts.tolist() == expected.tolist()   # the batched histogram is numpy's
    assert st.frac_saturated == 0.0

    tanh = nn.Sequential(nn.Tanh())
    with Probe(tanh, introspect(tanh, (1, 1, 4))) as probe:
        _, (st,) = run(tanh, probe, torch.tensor([[[[-5.0, 0.0, 0.5, 9.0]]]]), backward=False)
    assert st.function == "tanh" and st.frac_saturated == pytest.approx(0.5)

    leaky = nn.Sequential(nn.LeakyReLU(0.2))
    with Probe(leaky, introspect(leaky, (1, 1, 2))) as probe:
        _, (st,) = run(leaky, probe, torch.ones(1, 1, 1, 2), backward=False)
    assert st.function == "leaky_relu" and st.params == (("negative_slope", 0.2),)


def test_activation_gradient_norms_match_autograd():
    model = tiny_inplace()
    x = torch.randn(3, 1, 8, 8)
    # reference: the same computation without in-place ops, gradients via retain_grad
    ref = [m for m in model]
    with torch.no_grad():
        pass
    h = x
    outs = []
    for m in ref:
        if isinstance(m, nn.ReLU):
            h = F.relu(h)
        else:
            h = m(h)
        h.retain_grad()
        outs.append(h)
    h.sum().backward()
    expected = {str(i): torch.linalg.vector_norm(o.grad[2]).item() for i, o in enumerate(outs)}
    model.zero_grad()
    with Probe(model, introspect(model, (1, 8, 8))) as probe:
        run(model, probe, x, sample_index=2)
        norms = probe.act_grad_norms()
    assert set(norms) == set(expected)
    for k in expected:
        assert norms[k] == pytest.approx(expected[k], rel=1e-5), k


def test_nonfinite_output_sanitized_and_located():
    class Blowup(nn.Module):
        def forward(self, x):
            y = x.clone()
            y[:, 0, 0, 0] = float("inf")
            y[:, 1, 0, 0] = float("nan")
            return y

    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), Blowup(), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 16, 2))
    info = introspect(model, (1, 4, 4))
    with Probe(model, info) as probe:
        caps, stats = run(model, probe, torch.randn(2, 1, 4, 4), backward=False)
        assert probe.first_nonfinite_layer() == "1"
    blow = next(c for c in caps if c.name == "1")
    assert blow.nonfinite == 2 and np.isfinite(blow.maps).all() and np.isfinite(blow.mosaic.image).all()
    assert next(c for c in caps if c.name == "0").nonfinite == 0
    assert all(np.isfinite(s.pre.counts).all() and np.isfinite(s.pre.edges).all() for s in stats)


def test_nonfinite_in_another_sample_still_located():
    class BadSample(nn.Module):
        def forward(self, x):
            y = x.clone()
            if y.shape[0] > 1:
                y[1] = float("nan")
            return y

    model = nn.Sequential(nn.Conv2d(1, 2, 3), BadSample(), nn.Flatten(), nn.Linear(8, 2))
    with Probe(model, introspect(model, (1, 4, 4))) as probe:
        run(model, probe, torch.randn(3, 1, 4, 4), sample_index=0, backward=False)
        assert probe.first_nonfinite_layer() == "1"


def test_shared_module_captured_at_first_call():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.act(self.conv(x)) - 1.0)

    model = Shared()
    x = torch.randn(1, 1, 4, 4)
    with Probe(model, introspect(model, (1, 4, 4))) as probe:
        caps, stats = run(model, probe, x, backward=False)
    with torch.no_grad():
        first = model.conv(x)[0]
    np.testing.assert_allclose(next(c for c in caps if c.name == "act").maps, first.clamp(min=0).numpy(), rtol=1e-6)
    assert len(stats) == 1 and stats[0].pre_min == pytest.approx(first.min().item())


def test_arm_clears_previous_capture():
    model = tiny_inplace()
    with Probe(model, introspect(model, (1, 8, 8))) as probe:
        run(model, probe, torch.randn(1, 1, 8, 8))
        probe.arm("*")
        probe.disarm()
        assert probe.collect() == ((), ()) and probe.act_grad_norms() == {}


def test_disarmed_hooks_do_no_tensor_work():
    # Counts every torch call of a forward+backward: the disarmed probe must add none
    # (its hooks return at once), which is what keeps instrumentation ~free between snapshots.
    from torch.overrides import TorchFunctionMode

    class Count(TorchFunctionMode):
        n = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    model = FunctionalNet()
    x = torch.randn(4, 1, 8, 8)

    def calls():
        Count.n = 0
        with Count():
            model(x).sum().backward()
        return Count.n

    plain = calls()
    with Probe(model, introspect(model, (1, 8, 8))) as probe:
        with probe.functional():
            hooked = calls()
        probe.arm("*")
        armed = calls()
        probe.disarm()
    assert hooked == plain
    assert armed > plain    # the counter does see hook work when there is some
