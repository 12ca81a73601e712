"""Convolution, pooling and fully connected units step by step: the arithmetic shown equals the real layer output."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from visualizer.core.checkpoint import load_model
from visualizer.core.datasets import load_dataset
from visualizer.core.explain.capture import model_input
from visualizer.core.explain.records import ExplainError
from visualizer.core.explain.steps import explain_conv, explain_linear, explain_pool, window_geometry
from visualizer.core.inspector import Inspector
from visualizer.core.snapshot import CaptureRequest

REPO_MODELS = __import__("pathlib").Path(__file__).resolve().parents[2] / "models"


def close(a: float, b: float, rel: float = 1e-5) -> bool:
    return abs(a - b) <= rel * (1.0 + abs(b))


def image(c: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(c, h, w)).astype(np.float32)


def probe_positions(ho: int, wo: int):
    """Corners, edges and the centre: where padding and the stride's remainder show."""
    ys, xs = sorted({0, ho // 2, ho - 1}), sorted({0, wo // 2, wo - 1})
    return [(y, x) for y in ys for x in xs]


CONVS = {
    "strided": lambda: nn.Conv2d(2, 3, 3, stride=2),
    "padded": lambda: nn.Conv2d(2, 3, 3, padding=1),
    "padded_reflect": lambda: nn.Conv2d(2, 3, 3, padding=2, padding_mode="reflect"),
    "same_even_kernel": lambda: nn.Conv2d(2, 3, 4, padding="same"),
    "dilated": lambda: nn.Conv2d(2, 3, 3, dilation=2, padding=2),
    "grouped": lambda: nn.Conv2d(4, 6, 3, groups=2, padding=1),
    "depthwise": lambda: nn.Conv2d(4, 4, 3, groups=4, padding=1),
    "depthwise_multiplier": lambda: nn.Conv2d(3, 6, 3, groups=3, stride=2, padding=1),
    "rectangular_no_bias": lambda: nn.Conv2d(3, 2, (3, 2), stride=(2, 1), padding=(1, 0), bias=False),
}


@pytest.mark.parametrize("case", list(CONVS))
def test_conv_step_sum_equals_the_real_output(case):
    torch.manual_seed(0)
    conv = CONVS[case]()
    model = nn.Sequential(conv, nn.ReLU())
    x = image(conv.in_channels, 9, 10)
    real = conv(torch.from_numpy(x)[None]).detach()[0]          # computed by torch, apart from the explanation
    ho, wo = real.shape[1:]
    for c in range(conv.out_channels):
        for y, xx in probe_positions(ho, wo):
            s = explain_conv(model, x, "0", c, y, xx)
            assert s.output == pytest.approx(float(real[c, y, xx]), abs=1e-6)
            assert close(s.total, s.output), (case, c, y, xx, s.total, s.output)
            assert np.allclose(s.products, s.patches * s.kernel, atol=1e-6)
            assert close(float(s.channel_sums.sum()) + s.bias, s.total)
            assert s.kernel.shape == (conv.in_channels // conv.groups, *conv.kernel_size)
            assert np.array_equal(s.kernel, conv.weight.detach()[c].numpy())
            assert s.has_bias == (conv.bias is not None)
            # ReLU follows: applied to the computed sum, and equal to the real activation output.
            assert s.activation is not None and s.activation.layer == "1" and s.activation.function == "relu"
            assert s.activation.computed == pytest.approx(max(s.total, 0.0), abs=1e-5)
            assert s.activation.output == pytest.approx(max(s.output, 0.0), abs=1e-6)
            assert s.output_map.shape == (ho, wo)


def test_conv_step_shows_padding_as_zeros_and_the_group_it_reads():
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 6, 3, groups=2, padding=1, stride=2)
    x = image(4, 7, 7, seed=3)
    s = explain_conv(nn.Sequential(conv), x, "0", 4, 0, 0)       # channel 4 is in group 1
    assert s.in_channels == (2, 3)
    assert s.rows.tolist() == [-1, 0, 1] and s.cols.tolist() == [-1, 0, 1]
    assert s.inside.tolist() == [[False, False, False], [False, True, True], [False, True, True]]
    assert np.all(s.patches[:, ~s.inside] == 0)
    assert np.array_equal(s.patches[:, 1:, 1:], x[2:4, 0:2, 0:2])
    assert s.padded_inputs.shape == (2, 9, 9)
    assert np.array_equal(s.padded_inputs[:, 1:-1, 1:-1], x[2:4])
    g = s.geometry
    assert (g.stride, g.padding, g.output_size, g.count) == ((2, 2), (1, 1, 1, 1), (4, 4), 16)
    assert g.origin(1, 2) == (1, 3)                               # 1*2-1, 2*2-1
    assert g.positions[:3].tolist() == [[0, 0], [0, 1], [0, 2]] and g.positions[-1].tolist() == [3, 3]
    assert g.next_position(0, 3) == (1, 0) and g.next_position(3, 3) == (0, 0)


class FunctionalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        x = F.leaky_relu(self.conv(x), 0.2)
        return torch.sigmoid(self.fc(x.flatten(1)))


def test_functional_activation_after_the_conv_and_the_linear():
    torch.manual_seed(2)
    model = FunctionalNet()
    x = image(1, 6, 6, seed=4)
    seen_negative = False
    for y, xx in probe_positions(4, 4):
        s = explain_conv(model, x, "conv", 1, y, xx)
        a = s.activation
        assert a is not None and a.functional and a.function == "leaky_relu" and a.layer == "F.leaky_relu"
        want = s.total if s.total > 0 else 0.2 * s.total
        assert a.computed == pytest.approx(want, abs=1e-5) and a.output == pytest.approx(a.computed, abs=1e-5)
        seen_negative |= s.output < 0
    assert seen_negative   # the slope of the negative side was really exercised
    u = explain_linear(model, x, "fc", 2)
    assert close(u.total, u.output)
    assert u.activation.function == "sigmoid" and u.activation.functional
    assert u.activation.output == pytest.approx(1 / (1 + np.exp(-u.output)), abs=1e-6)


def test_inplace_relu_does_not_hide_the_pre_activation_value():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True))
    x = image(1, 8, 8, seed=5)
    found = [explain_conv(model, x, "0", c, 2, 3) for c in range(4)]
    neg = [s for s in found if s.output < 0]
    assert neg, "no negative pre-activation among these units"
    for s in neg:
        assert close(s.total, s.output) and s.activation.output == 0.0 and s.activation.computed == 0.0


def test_batchnorm_between_conv_and_activation_is_named_and_training_state_is_untouched():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    model.train()
    model[1].running_mean.fill_(0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    s = explain_conv(model, image(1, 6, 6), "0", 0, 1, 1)
    assert s.next_layer == "1" and s.activation is None
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_bad_requests_give_one_clear_error():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 4))
    x = image(1, 8, 8)
    with pytest.raises(ExplainError, match=r"no layer named 'conv9'.*Conv2d layers: 0"):
        explain_conv(model, x, "conv9", 0, 0, 0)
    with pytest.raises(ExplainError, match=r"'2' is a MaxPool2d, not a Conv2d layer"):
        explain_conv(model, x, "2", 0, 0, 0)
    with pytest.raises(ExplainError, match=r"row 6 is out of range: this layer has 0..5"):
        explain_conv(model, x, "0", 0, 6, 0)
    with pytest.raises(ExplainError, match=r"output channel 2 is out of range"):
        explain_conv(model, x, "0", 2, 0, 0)
    with pytest.raises(ExplainError, match=r"unit 4 is out of range"):
        explain_linear(model, x, "4", 4)
    with pytest.raises(ExplainError, match=r"forward pass failed"):
        explain_conv(model, image(1, 5, 5), "0", 0, 0, 0)
    with pytest.raises(ExplainError, match=r"NaN"):
        explain_conv(model, np.full((1, 8, 8), np.nan, np.float32), "0", 0, 0, 0)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# ------------------------------------------------------------------ pooling

POOLS = {
    "max2": lambda: nn.MaxPool2d(2),
    "max3_s2_p1": lambda: nn.MaxPool2d(3, stride=2, padding=1),
    "max3_dilated": lambda: nn.MaxPool2d(3, stride=1, dilation=2),
    "max2_ceil": lambda: nn.MaxPool2d(2, ceil_mode=True),
    "avg3_s2_p1_with_pad": lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True),
    "avg3_s2_p1_without_pad": lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
    "avg2_ceil": lambda: nn.AvgPool2d(2, ceil_mode=True),
    "avg3_ceil_pad": lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),
    "avg2_divisor": lambda: nn.AvgPool2d(2, divisor_override=3),
    "adaptive_avg": lambda: nn.AdaptiveAvgPool2d((3, 3)),
    "adaptive_max": lambda: nn.AdaptiveMaxPool2d((2, 3)),
}


@pytest.mark.parametrize("case", list(POOLS))
def test_pool_step_equals_the_real_pooled_value_at_every_position(case):
    pool = POOLS[case]()
    model = nn.Sequential(nn.Conv2d(1, 2, 2), pool)
    x = image(1, 8, 8, seed=7)                                    # the conv makes a 7x7 input: odd, uneven
    with torch.no_grad():
        inp = model[0](torch.from_numpy(x)[None])
    real = pool(inp)[0]
    mode = "max" if "max" in case else "avg"
    for c in range(2):
        for y in range(real.shape[1]):
            for xx in range(real.shape[2]):
                s = explain_pool(model, x, "1", c, y, xx)
                assert s.mode == mode and s.output == pytest.approx(float(real[c, y, xx]), abs=1e-7)
                assert close(s.computed, s.output, 1e-6), (case, c, y, xx, s.computed, s.output)
                if mode == "max":
                    assert inp[0, c][s.winner].item() == pytest.approx(s.output, abs=1e-7)
                else:
                    assert s.winner is None and s.window_sum / s.divisor == pytest.approx(s.computed)


def test_max_pool_winner_is_the_one_torch_picks():
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.MaxPool2d(3, stride=2, padding=1))
    x = image(1, 9, 9, seed=8)
    with torch.no_grad():
        inp = model[0](torch.from_numpy(x)[None])
        _, idx = F.max_pool2d(inp, 3, 2, 1, return_indices=True)
    wi = inp.shape[-1]
    for y in range(idx.shape[2]):
        for xx in range(idx.shape[3]):
            s = explain_pool(model, x, "1", 1, y, xx)
            assert s.winner == divmod(int(idx[0, 1, y, xx]), wi)
            r, c = s.winner[0] - s.rows[0], s.winner[1] - s.cols[0]
            assert s.inside[r, c] and s.patch[r, c] == pytest.approx(s.output)


def test_pool_step_geometry_and_padding_cells():
    model = nn.Sequential(nn.Identity(), nn.AvgPool2d(3, stride=2, padding=1))
    x = image(1, 6, 6, seed=9)
    s = explain_pool(model, x, "1", 0, 0, 0)
    assert s.rows.tolist() == [-1, 0, 1] and not s.inside[0].any() and not s.inside[:, 0].any()
    assert s.divisor == 9 and s.window_sum == pytest.approx(float(x[0, :2, :2].sum()), abs=1e-5)
    assert s.padded_input.shape == (8, 8) and np.array_equal(s.padded_input[1:-1, 1:-1], x[0])
    g = window_geometry(model, x, "1")
    assert (g.kernel, g.stride, g.padding, g.output_size) == ((3, 3), (2, 2), (1, 1, 1, 1), (3, 3))


# ------------------------------------------------------------------ fully connected

def test_linear_step_top_contributions_sum_to_the_real_output():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(30, 7), nn.ReLU())
    x = image(1, 5, 6, seed=10)
    for unit in range(7):
        s = explain_linear(model, x, "1", unit, top_k=5)
        assert close(s.total, s.output)
        contrib = s.products[s.top]
        assert np.all(np.diff(np.abs(contrib)) <= 0)              # largest |w_i x_i| first
        assert np.abs(np.delete(s.products, s.top)).max() <= np.abs(contrib).min()
        assert close(float(contrib.sum(dtype=np.float64)) + s.rest + s.bias, s.output)
        assert np.allclose(s.inputs, x.reshape(-1)) and np.array_equal(s.weights, model[1].weight[unit].detach().numpy())
        assert s.activation.layer == "2" and s.activation.output == pytest.approx(max(s.output, 0.0), abs=1e-6)
    whole = explain_linear(model, x, "1", 0, top_k=1000)
    assert len(whole.top) == 30 and whole.rest == 0.0


# ------------------------------------------------------------------ the real, trained model

@pytest.fixture(scope="module")
def lenet_and_digit():
    bundle = load_model(REPO_MODELS / "lenet5_mnist.pt")
    ds = load_dataset("mnist", limit=20)
    img = np.zeros(bundle.input_shape, np.float32)
    img[0, 2:30, 2:30] = ds.images[3, 0] / 255.0
    return bundle, img


def test_trained_lenet_steps_match_what_the_feature_map_view_is_sent(lenet_and_digit):
    bundle, img01 = lenet_and_digit
    x = model_input(img01, bundle.mean, bundle.std)
    with Inspector(bundle) as inspector:
        snap = inspector.probe(CaptureRequest(layers=("C1", "C3", "S2", "F6")), img01)
    for layer, (c, y, xx) in (("C1", (2, 14, 9)), ("C1", (5, 0, 27)), ("C3", (7, 4, 5)), ("C3", (15, 9, 0))):
        s = explain_conv(bundle.model, x, layer, c, y, xx)
        shown = float(snap.layer(layer).maps[c, y, xx])          # the value the feature-map view draws
        assert close(s.total, shown, 1e-5) and s.output == pytest.approx(shown, abs=1e-6)
        assert s.activation.layer == f"{layer}_act"
    p = explain_pool(bundle.model, x, "S2", 3, 7, 7)
    # (within a float32 step at this size: the probe's one-image kernels and the explanation's may round
    # the conv below the pool differently in the last bit, as on one CI machine)
    assert p.output == pytest.approx(float(snap.layer("S2").maps[3, 7, 7]), abs=1e-6) and close(p.computed, p.output)
    u = explain_linear(bundle.model, x, "F6", 11)
    assert close(u.total, u.output) and u.output == pytest.approx(float(snap.layer("F6").vector[11]), abs=1e-5)


def test_step_records_travel_as_records_without_pickle(lenet_and_digit):
    """The engine runs in another process: its records cross in the run-file/stream encoding, exactly."""
    from visualizer.core.record.encoding import decode_record, encode_record
    bundle, img01 = lenet_and_digit
    x = model_input(img01, bundle.mean, bundle.std)
    for rec in (explain_conv(bundle.model, x, "C3", 3, 2, 2), explain_pool(bundle.model, x, "S2", 1, 4, 4),
                explain_linear(bundle.model, x, "F6", 5)):
        back = decode_record(encode_record(rec, compact=False))
        assert type(back) is type(rec)
        for name in rec.__dataclass_fields__:
            a, b = getattr(rec, name), getattr(back, name)
            if isinstance(a, np.ndarray):
                assert np.array_equal(a, b) and a.dtype == b.dtype, name
            else:
                assert a == b, name
