"""Receptive fields against a brute-force perturbation check on real models.

The check: every weight set positive (1 / fan-in), biases 0, in float64, so no path can
cancel another; a blank image with one pixel set changes an output position exactly when
that pixel is in the position's receptive field. Each pixel of the image is tried.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from visualizer.core.architectures import build_model
from visualizer.core.channels.receptive_field import receptive_field, receptive_fields
from visualizer.core.errors import ModelError


def positive_copy(model: nn.Module) -> nn.Module:
    import copy
    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for mod in m.modules():
            for name, p in mod.named_parameters(recurse=False):
                if name == "weight" and p.dim() > 1:
                    p.fill_(1.0 / p[0].numel())
                elif name == "bias":
                    p.zero_()
    return m


class _Enough(Exception):
    pass


def affected(model: nn.Module, shape, layers) -> dict[str, np.ndarray]:
    """{layer: (H, W, Ho, Wo) bool}: does input pixel (h, w) change output position (ho, wo)?

    One pass per chunk of pixels for all layers, stopped once the last of them has run.
    """
    m = positive_copy(model)
    c, h, w = shape
    outs: dict[str, torch.Tensor] = {}

    def hook(name):
        def keep(_m, _a, o):
            outs.setdefault(name, o.detach())
            if len(outs) == len(layers):
                raise _Enough
        return keep

    def run(x):
        outs.clear()
        try:
            m(x)
        except _Enough:
            pass
        return dict(outs)

    handles = [m.get_submodule(n).register_forward_hook(hook(n)) for n in layers]
    try:
        with torch.no_grad():
            base = run(torch.zeros(1, c, h, w, dtype=torch.float64))
            found = {n: [] for n in layers}
            for s in range(0, h * w, 256):
                idx = torch.arange(s, min(h * w, s + 256))
                x = torch.zeros(len(idx), c, h * w, dtype=torch.float64)
                x[torch.arange(len(idx)), :, idx] = 1.0
                for n, o in run(x.view(len(idx), c, h, w)).items():
                    found[n].append((o - base[n]).abs().sum(1) > 0)
    finally:
        for handle in handles:
            handle.remove()
    return {n: torch.cat(f).view(h, w, *base[n].shape[2:]).numpy() for n, f in found.items()}


def assert_fields_match(model, shape, layers, dense=True):
    """Each position's field is exactly the pixels that change it (``dense``); where dilated kernels
    leave holes, those pixels lie inside it and reach its edges wherever it is not clipped."""
    fields = receptive_fields(model, shape)
    truths = affected(model, shape, layers)
    for layer in layers:
        rf, truth = fields[layer], truths[layer]
        assert truth.shape[2:] == rf.output_size, layer
        for y in range(rf.output_size[0]):
            for x in range(rf.output_size[1]):
                y0, x0, y1, x1 = rf.box(y, x)
                expected = np.zeros(truth.shape[:2], bool)
                expected[y0:y1, x0:x1] = True
                seen = truth[:, :, y, x]
                if dense:
                    assert np.array_equal(seen, expected), (layer, y, x, rf)
                    continue
                assert not (seen & ~expected).any(), (layer, y, x, rf)
                if rf.box(y, x, clip=False) == (y0, x0, y1, x1):
                    rows, cols = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
                    assert (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1) == (y0, x0, y1, x1), (layer, y, x, rf)
    return fields


def test_lenet5_convolutions_and_pools():
    model = build_model("lenet5", in_channels=1, input_size=32)
    fields = assert_fields_match(model, (1, 32, 32), ["C1", "S2", "C3", "C3_act", "S4", "C5"])
    assert (fields["C3"].size, fields["C3"].jump, fields["C3"].start) == ((14, 14), (2, 2), (0, 0))
    assert "F6" not in fields and "flatten" not in fields       # not spatial maps


def test_resnet18_residual_blocks_and_stride_2():
    model = build_model("resnet18", in_channels=3, input_size=32, width=0.125)
    fields = assert_fields_match(model, (3, 32, 32), ["conv1", "layer1.0", "layer2.0.conv1",
                                                      "layer2.0.downsample.0", "layer2.0", "layer3.1.conv2"])
    # A block sees what either of its paths sees: the 3x3 pair is wider than the 1x1 shortcut.
    assert fields["layer2.0"].size == (17, 17) and fields["layer2.0.downsample.0"].size == (11, 11)
    assert fields["layer2.0"].jump == (2, 2) and fields["layer2.0"].start == (-8, -8)


class Tutorial(nn.Module):
    """Dilation, stride 2 with padding, functional pools, F.pad, 'same' padding and a strided shortcut."""

    def __init__(self):
        super().__init__()
        self.dilated = nn.Conv2d(1, 4, 3, padding=2, dilation=2)
        self.act = nn.ReLU()
        self.down = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.shortcut = nn.Conv2d(4, 6, 1, stride=2)
        self.block = nn.ReLU()
        self.same = nn.Conv2d(6, 6, 3, padding="same", dilation=3)
        self.after_pool = nn.Conv2d(6, 8, (3, 1), stride=(1, 2))
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.act(self.dilated(x))
        x = self.block(self.down(x) + self.shortcut(x))
        x = F.relu(self.same(x))
        x = F.max_pool2d(x, 3, stride=2, padding=1)
        x = F.pad(x, (1, 0, 2, 1))
        x = F.avg_pool2d(x, 2)
        x = self.after_pool(x)
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


def test_dilation_stride_functional_pools_and_a_shortcut_on_a_non_square_input():
    fields = assert_fields_match(Tutorial(), (1, 30, 26), ["dilated", "down", "shortcut", "block", "same",
                                                           "after_pool"], dense=False)
    assert fields["dilated"].size == (5, 5) and fields["dilated"].start == (-2, -2)   # 3x3, dilation 2
    assert fields["after_pool"].jump == (8, 16)                                         # (1, 2) stride, last


class Upsampling(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.after = nn.Conv2d(2, 2, 3)

    def forward(self, x):
        x = F.interpolate(self.conv(x), scale_factor=2.0)
        return self.after(x).mean((1, 2, 3)).unsqueeze(1).repeat(1, 10)


def test_a_step_it_cannot_describe_ends_the_fields_instead_of_guessing():
    fields = receptive_fields(Upsampling(), (1, 16, 16))
    assert "conv" in fields and "after" not in fields
    with pytest.raises(ModelError, match="'after' has no receptive field"):
        receptive_field(Upsampling(), (1, 16, 16), "after")
    with pytest.raises(ModelError, match="forward failed"):
        receptive_fields(build_model("lenet5", in_channels=1, input_size=32), (3, 32, 32))
