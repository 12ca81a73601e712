import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from visualizer.core.errors import ModelError
from visualizer.core.inspector import Inspector
from visualizer.core.model_bundle import ModelBundle
from visualizer.core.snapshot import CaptureRequest


class BNNet(nn.Module):
    def __init__(self, c=3, k=4):
        super().__init__()
        self.conv = nn.Conv2d(c, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(6 * 4 * 4, k)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv(x))))
        return self.fc(x.flatten(1))


def bundle(model=None, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5)):
    torch.manual_seed(0)
    model = model or BNNet()
    return ModelBundle(model=model, input_shape=(3, 8, 8), class_names=("a", "b", "c", "d"), mean=mean, std=std)


def test_probe_snapshot_contents_and_normalisation():
    b = bundle()
    img = np.random.default_rng(0).random((3, 8, 8), dtype=np.float32)
    with Inspector(b) as insp:
        snap = insp.probe(CaptureRequest(layers=("conv",), filter_layers=("conv",), request_id=7), img, label=2)
    x = (torch.from_numpy(img) - torch.tensor(b.mean).view(3, 1, 1)) / torch.tensor(b.std).view(3, 1, 1)
    b.model.eval()
    with torch.no_grad():
        conv = b.model.conv(x[None])[0]
        expected = torch.softmax(b.model(x[None])[0], 0)
    assert snap.request_id == 7 and snap.label == 2 and snap.class_names == ("a", "b", "c", "d")
    np.testing.assert_allclose(snap.probabilities, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert snap.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(snap.input_image, img)
    assert [c.name for c in snap.layers] == ["conv"]
    np.testing.assert_allclose(snap.layer("conv").maps, conv.numpy(), rtol=1e-5, atol=1e-6)
    assert [s.name for s in snap.activations] == ["F.relu"]       # every activation, selected or not
    assert [f.name for f in snap.filters] == ["conv"]


def test_star_captures_every_layer_in_order():
    with Inspector(bundle()) as insp:
        snap = insp.probe(CaptureRequest(layers=("*",)), np.zeros((3, 8, 8), np.float32))
        assert [c.name for c in snap.layers] == list(insp.info.names())
    pool = snap.layer("pool")
    assert pool.pool is not None and pool.pool.argmax.shape == (6, 4, 4)


def test_probe_leaves_batchnorm_and_mode_untouched():
    b = bundle()
    b.model.train()
    before = {k: v.clone() for k, v in b.model.state_dict().items()}
    with Inspector(b) as insp:
        insp.probe(CaptureRequest(layers=("*",)), np.random.default_rng(1).random((3, 8, 8)).astype(np.float32))
    assert b.model.training and b.model.bn.training
    after = b.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


class Exploding(BNNet):
    def forward(self, x):
        assert not torch.backends.mkldnn.enabled     # the one-sample pass runs on the plain kernels
        raise RuntimeError("boom")


def test_the_probe_pass_puts_the_kernel_choice_back_also_when_the_model_raises():
    assert torch.backends.mkldnn.enabled
    with Inspector(bundle()) as insp:
        insp.probe(CaptureRequest(layers=("*",)), np.zeros((3, 8, 8), np.float32))
    assert torch.backends.mkldnn.enabled
    with Inspector(bundle()) as twin:                # introspection runs the forward: take a twin's
        info = twin.info
    with pytest.raises(RuntimeError, match="boom"), Inspector(bundle(Exploding()), info=info) as insp:
        insp.probe(CaptureRequest(), np.zeros((3, 8, 8), np.float32))
    assert torch.backends.mkldnn.enabled


def test_probe_passes_that_overlap_on_two_threads_put_the_kernel_choice_back():
    # The switch is process-wide: each pass saving and restoring its own left it off for good when
    # two overlapped (the trainer's snapshot and the side probe), slowing every later training step.
    import threading

    from visualizer.core.introspect import one_sample_kernels
    assert torch.backends.mkldnn.enabled
    cpu = torch.device("cpu")
    first_in, second_in = threading.Event(), threading.Event()

    def first():
        with one_sample_kernels(cpu):
            first_in.set()
            second_in.wait(10)       # the other pass enters while this one is inside, and leaves last

    t = threading.Thread(target=first)
    t.start()
    first_in.wait(10)
    with one_sample_kernels(cpu):
        second_in.set()
        t.join(10)
        assert not torch.backends.mkldnn.enabled      # still inside this one
    assert torch.backends.mkldnn.enabled


def test_default_input_and_bad_shape():
    with Inspector(bundle()) as insp:
        req = CaptureRequest(probe_input=np.ones((3, 8, 8), np.float32), probe_label=1)
        snap = insp.probe(req)
        assert snap.label == 1 and snap.input_image.min() == 1.0
        assert insp.probe(CaptureRequest()).input_image.shape == (3, 8, 8)
        with pytest.raises(ModelError, match="shape"):
            insp.probe(CaptureRequest(), np.zeros((1, 8, 8), np.float32))


def test_log_softmax_outputs_not_softmaxed_twice():
    class LogSm(BNNet):
        def forward(self, x):
            return F.log_softmax(super().forward(x), dim=1)

    b = bundle(LogSm())
    with Inspector(b) as insp:
        snap = insp.probe(CaptureRequest(), np.full((3, 8, 8), 0.5, np.float32))
        b.model.eval()
        with torch.no_grad():
            x = (torch.full((3, 8, 8), 0.5) - torch.tensor(b.mean).view(3, 1, 1)) / torch.tensor(b.std).view(3, 1, 1)
            expected = b.model(x[None])[0].exp()
    np.testing.assert_allclose(snap.probabilities, expected.numpy(), rtol=1e-5)


def test_capture_filters_copies_and_delta_and_grads():
    b = bundle()
    conv = b.model.conv
    initial = {"conv": conv.weight.detach().clone().numpy()}
    with torch.no_grad():
        conv.weight.add_(0.5)
    b.model(torch.randn(2, 3, 8, 8)).sum().backward()
    with Inspector(b) as insp:
        (f,) = insp.capture_filters(["conv", "fc", "nope"], initial=initial, grads=True, max_channels=4)
    assert f.weight.shape == (4, 3, 3, 3) and f.out_channels == 6 and f.in_channels == 3 and f.groups == 1
    np.testing.assert_allclose(f.delta, 0.5, rtol=1e-6)
    np.testing.assert_allclose(f.grad, conv.weight.grad[:4].numpy(), rtol=1e-6)
    assert f.levels.signed and f.levels.low == -f.levels.high
    snapshot_copy = f.weight.copy()
    with torch.no_grad():
        conv.weight.zero_()                          # the capture must not alias live weights
    np.testing.assert_array_equal(f.weight, snapshot_copy)
    assert not f.weight.flags.writeable


def test_gradient_stats_match_param_grads():
    b = bundle()
    model = b.model
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 3, 8, 8)).pow(2).mean().backward()
    prev = {"conv": model.conv.weight.detach().clone(), "fc.weight": model.fc.weight.detach().clone().numpy()}
    opt.step()
    with Inspector(b) as insp:
        stats = insp.gradient_stats(prev, {"conv": 1.5})
    assert [s.name for s in stats] == ["conv", "bn", "fc"]
    conv, bn, fc = stats
    norm = torch.linalg.vector_norm
    assert conv.weight_norm == pytest.approx(norm(model.conv.weight.grad).item(), rel=1e-5)
    assert conv.bias_norm == pytest.approx(norm(model.conv.bias.grad).item(), rel=1e-5)
    assert fc.weight_norm == pytest.approx(norm(model.fc.weight.grad).item(), rel=1e-5)
    assert conv.weight_l2 == pytest.approx(norm(model.conv.weight).item(), rel=1e-5)
    # SGD without momentum: the update is lr * grad
    assert conv.update_ratio == pytest.approx(0.1 * conv.weight_norm / conv.weight_l2, rel=1e-4)
    assert fc.update_ratio == pytest.approx(0.1 * fc.weight_norm / fc.weight_l2, rel=1e-4)
    assert bn.update_ratio == 0.0                     # no previous weights given
    assert conv.act_grad_norm == 1.5 and fc.act_grad_norm is None


def test_gradient_stats_into_scratch_copies_give_the_same_figures_and_leave_the_model_alone():
    b = bundle()
    model = b.model
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 3, 8, 8)).pow(2).mean().backward()
    prev = {n: m.weight.detach().clone() for n, m in (("conv", model.conv), ("bn", model.bn), ("fc", model.fc))}
    opt.step()
    after = {n: t.clone() for n, t in ((n, model.get_submodule(n).weight.detach()) for n in prev)}
    with Inspector(b) as insp:
        fresh = insp.gradient_stats({n: t.clone() for n, t in prev.items()})
        reused = insp.gradient_stats(prev, reuse_prev=True)
    assert fresh == reused and all(s.update_ratio > 0 for s in reused)
    for n, w in after.items():
        assert torch.equal(model.get_submodule(n).weight.detach(), w)       # only the copies were overwritten
    assert not torch.equal(prev["conv"], after["conv"])


def test_gradient_stats_without_grads_are_zero():
    with Inspector(bundle()) as insp:
        stats = insp.gradient_stats()
    assert all(s.weight_norm == 0.0 and s.update_ratio == 0.0 for s in stats)


def test_first_nonfinite_layer_restores_buffers():
    b = bundle()
    b.model.train()
    with torch.no_grad():
        b.model.fc.weight[0, 0] = float("inf")
    before = {k: v.clone() for k, v in b.model.state_dict().items()}
    with Inspector(b) as insp:
        assert insp.first_nonfinite_layer(torch.randn(4, 3, 8, 8)) == "fc"
    after = b.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if "running" in k or "num_batches" in k)


def test_close_removes_hooks():
    b = bundle()
    insp = Inspector(b)
    assert b.model.conv._forward_hooks
    insp.close()
    insp.close()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in b.model.modules())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_unprobeable_bundle_still_predicts():
    model = torch.jit.script(BNNet().eval())
    b = ModelBundle(model=model, input_shape=(3, 8, 8), class_names=("a", "b", "c", "d"), probeable=False)
    with Inspector(b) as insp:
        snap = insp.probe(CaptureRequest(layers=("*",)), np.zeros((3, 8, 8), np.float32))
        assert insp.first_nonfinite_layer(torch.zeros(1, 3, 8, 8)) is None
    assert snap.layers == () and snap.activations == ()
    assert snap.probabilities.shape == (4,) and snap.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
