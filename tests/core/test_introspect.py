import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from visualizer.core.errors import ModelError
from visualizer.core.introspect import find_input_shape, introspect
from visualizer.core.model_info import LAYER_KINDS


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(x + y)          # the residual addition, then a functional ReLU


class Inception(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.b1 = nn.Conv2d(c, 4, 1)
        self.b3 = nn.Sequential(nn.Conv2d(c, 2, 1), nn.ReLU(), nn.Conv2d(2, 6, 3, padding=1))
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.pool(x)], dim=1)


class SqueezeExcite(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Conv2d(c, max(c // 4, 1), 1)
        self.fc2 = nn.Conv2d(max(c // 4, 1), c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class Zoo(nn.Module):
    """Nested blocks, residuals, concatenation, depthwise conv, SE, shared ReLU, functional activations."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.act = nn.ReLU()                      # shared: called twice below
        self.stage = nn.Sequential(Residual(8), nn.Sequential(Residual(8)))
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.se = SqueezeExcite(8)
        self.inc = Inception(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(18, 5)

    def forward(self, x):
        x = self.act(self.stem(x))
        x = self.stage(x)
        x = self.act(self.dw(x))
        x = self.se(x)
        x = self.inc(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(self.drop(x))


def test_zoo_layers_in_execution_order_with_shapes():
    model = Zoo()
    info = introspect(model, (3, 16, 16))
    names = info.names()
    assert info.input_shape == (3, 16, 16) and info.num_outputs == 5
    assert info.total_params == sum(p.numel() for p in model.parameters())
    assert all(l.kind in LAYER_KINDS for l in info.layers)
    # execution order: the shared `act` is first used after stem, fc registered last but runs last
    assert names.index("stem") < names.index("stem.0") < names.index("act") < names.index("stage")
    assert names.index("dw") < names.index("se") < names.index("inc") < names.index("fc")
    # blocks listed before their children, with total parameter counts
    stage = info.by_name("stage")
    assert stage.kind == "block" and stage.params == sum(p.numel() for p in model.stage.parameters())
    assert info.by_name("stage.1.0").kind == "block" and info.by_name("stage.1.0").parent == "stage.1"
    # kinds
    assert info.by_name("dw").kind == "depthwise_conv" and "groups=8" in info.by_name("dw").detail
    assert info.by_name("stem.0").kind == "conv" and info.by_name("stem.0").detail.startswith("3x3 s1 p1")
    assert info.by_name("stem.1").kind == "norm"
    assert info.by_name("inc.pool").kind == "pool" and info.by_name("inc.pool").detail.startswith("max 3x3 s1")
    assert info.by_name("pool").kind == "pool"
    assert info.by_name("drop").kind == "dropout"
    assert info.by_name("fc").kind == "linear" and info.by_name("fc").params == 18 * 5 + 5
    # shapes per sample
    assert info.by_name("stem.0").output_shape == (8, 16, 16)
    assert info.by_name("inc").output_shape == (18, 16, 16)   # 4 + 6 + 8 concatenated
    assert info.by_name("inc.b3.2").output_shape == (6, 16, 16)
    assert info.by_name("se.fc1").output_shape == (2, 1, 1)
    assert info.by_name("fc").output_shape == (5,)
    # leaves exclude blocks
    assert all(l.kind != "block" for l in info.leaves())


def test_shared_activation_listed_once_with_first_call():
    info = introspect(Zoo(), (3, 16, 16))
    act = [l for l in info.layers if l.name == "act"]
    assert len(act) == 1
    assert act[0].calls == 2 and "called 2 times" in act[0].detail
    assert act[0].kind == "activation" and act[0].activation == "relu"
    assert act[0].output_shape == (8, 16, 16)


def test_functional_activations_recorded_in_order():
    info = introspect(Zoo(), (3, 16, 16))
    names = info.names()
    # Residual.forward: F.relu after bn1, then F.relu after the addition (suffix _1)
    a, b = "stage.0.F.relu", "stage.0.F.relu_1"
    assert a in names and b in names
    assert names.index("stage.0.bn1") < names.index(a) < names.index("stage.0.conv2")
    assert names.index("stage.0.bn2") < names.index(b) < names.index("stage.1")
    la = info.by_name(a)
    assert la.functional and la.kind == "activation" and la.activation == "relu"
    assert la.parent == "stage.0" and la.output_shape == (8, 16, 16) and la.params == 0
    # squeeze-excitation: F.relu then torch.sigmoid inside `se`
    assert info.by_name("se.F.relu").output_shape == (2, 1, 1)
    sig = info.by_name("se.F.sigmoid")
    assert sig.activation == "sigmoid" and sig.output_shape == (8, 1, 1)
    assert names.index("se.fc2") < names.index("se.F.sigmoid")
    # the ReLU module inside inc.b3 is not duplicated as a functional call
    assert not any(n.startswith("inc.b3.1.F") for n in names)


def test_functional_params_and_root_level_calls():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.fc = nn.Linear(2 * 6 * 6, 3)

        def forward(self, x):
            x = F.leaky_relu(self.conv(x), 0.2)
            x = torch.tanh(x).flatten(1)
            return F.softmax(self.fc(x), dim=1)

    info = introspect(Net(), (1, 8, 8))
    lr = info.by_name("F.leaky_relu")
    assert lr is not None and lr.parent is None and lr.activation_params == (("negative_slope", 0.2),)
    assert info.by_name("F.tanh").output_shape == (2, 6, 6)
    assert info.by_name("F.softmax").output_shape == (3,)
    assert info.names() == ("conv", "F.leaky_relu", "F.tanh", "F.flatten", "fc", "F.softmax")
    flat = info.by_name("F.flatten")
    assert flat.kind == "other" and flat.functional and flat.output_shape == (72,) and flat.activation is None


def test_module_activation_params():
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.LeakyReLU(0.1), nn.ELU(alpha=0.5), nn.Flatten())
    info = introspect(m, (1, 5, 5))
    assert info.by_name("1").activation_params == (("negative_slope", 0.1),)
    assert info.by_name("2").activation == "elu" and info.by_name("2").activation_params == (("alpha", 0.5),)
    assert info.by_name("3").kind == "other"


def test_batchnorm_buffers_and_modes_unchanged():
    model = Zoo()
    model.train()
    model.stem[1].eval()   # a user's mix of modes is kept
    before = {k: v.clone() for k, v in model.state_dict().items()}
    introspect(model)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and model.stage.training and not model.stem[1].training


def test_hooks_removed_after_introspect():
    model = Zoo()
    introspect(model, (3, 16, 16))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_refuses_two_inputs_and_dict():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 1, 3)

        def forward(self, x, y):
            return self.c(x) + y

    class Dict(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 1, 3)

        def forward(self, d: dict):
            return self.c(d["image"])

    with pytest.raises(ModelError, match=r"forward\(self, x, y\) takes 2 inputs; the visualizer feeds one image tensor"):
        introspect(Two())
    with pytest.raises(ModelError, match=r"dict"):
        introspect(Dict())
    with pytest.raises(ModelError, match="dict"):
        find_input_shape(Dict())


def _fixed_size_net(size, c=1):
    # A Linear whose in_features fixes the spatial size the model accepts.
    return nn.Sequential(nn.Conv2d(c, 2, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(2 * (size // 2) ** 2, 4))


@pytest.mark.parametrize("size", [28, 32, 64])
def test_find_input_shape(size):
    assert find_input_shape(_fixed_size_net(size)) == (1, size, size)
    info = introspect(_fixed_size_net(size, c=3))
    assert info.input_shape == (3, size, size) and info.num_outputs == 4


def test_find_input_shape_explains_failure():
    with pytest.raises(ModelError, match=r"tried 1x32x32, 1x28x28.*last error"):
        find_input_shape(_fixed_size_net(30))
    with pytest.raises(ModelError, match="no Conv2d"):
        find_input_shape(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))


def test_a_model_without_conv_layers_is_tried_gray_then_colour_and_the_hint_first():
    assert find_input_shape(nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))) == (1, 28, 28)
    assert find_input_shape(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))) == (3, 32, 32)
    # 8x8 is not a size the search tries by itself: the open data's shape is.
    eight = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    assert find_input_shape(eight, hint=(1, 8, 8)) == (1, 8, 8)
    with pytest.raises(ModelError, match="no Conv2d"):
        find_input_shape(eight)
    # A conv model's channels come from its Conv2d; the hint does not override its size search.
    assert find_input_shape(_fixed_size_net(32), hint=(1, 8, 8)) == (1, 32, 32)


def test_forward_failure_with_given_shape_is_model_error():
    with pytest.raises(ModelError, match="forward failed"):
        introspect(_fixed_size_net(28), (1, 32, 32))


def test_uncalled_module_listed_last_with_no_shape():
    class Aux(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.aux = nn.Linear(3, 3)   # only used in training mode

        def forward(self, x):
            return self.conv(x).mean((2, 3))

    info = introspect(Aux(), (1, 8, 8))
    assert info.names()[-1] == "aux" and info.by_name("aux").output_shape is None
    assert info.by_name("aux").calls == 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_refused_with_reason():
    scripted = torch.jit.script(_fixed_size_net(28))
    with pytest.raises(ModelError, match="TorchScript"):
        introspect(scripted, (1, 28, 28))
