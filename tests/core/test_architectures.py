"""The model zoo: every network builds, trains, honours its options and keeps its classic layout."""
import dataclasses

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from visualizer.core.architectures import ACTIVATIONS, ARCHITECTURES, POOLINGS, ArchSpec, build_model
from visualizer.core.architectures.googlenet import Inception
from visualizer.core.architectures.mobilenet import InvertedResidual
from visualizer.core.architectures.resnet import BasicBlock

NAMES = ("lenet5", "alexnet", "vgg11", "vgg16", "googlenet", "resnet18", "plain18", "mobilenetv2",
         "simplecnn")
ACTIVATION_TYPES = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU,
                    "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def default_width(name):
    return ARCHITECTURES[name].default_width


def module_types(model):
    return {type(m) for m in model.modules()}


def count(model, cls):
    return sum(isinstance(m, cls) for m in model.modules())


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# --- registry ------------------------------------------------------------------------------

def test_registry_lists_every_architecture_with_a_one_line_description():
    assert tuple(ARCHITECTURES) == NAMES
    for name, spec in ARCHITECTURES.items():
        assert isinstance(spec, ArchSpec) and spec.name == name
        assert spec.title and spec.description.strip() and "\n" not in spec.description
        assert 0 < spec.default_width <= 1 and spec.default_input_size >= 28
        assert set(spec.options) <= {"activation", "pooling", "batchnorm", "dropout"}
    assert ARCHITECTURES["lenet5"].title == "LeNet-5"


def test_spec_is_frozen_and_its_recommended_options_are_read_only():
    spec = ARCHITECTURES["resnet18"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.default_width = 2.0
    with pytest.raises(TypeError):
        spec.recommended["batchnorm"] = False
    assert spec.recommended["batchnorm"] is True


def test_spec_build_is_build_model_with_the_same_checks():
    model = ARCHITECTURES["lenet5"].build(num_classes=4)
    assert model.output.out_features == 4
    with pytest.raises(ValueError):
        ARCHITECTURES["lenet5"].build(activation="swish")


# --- builds and trains ---------------------------------------------------------------------

@pytest.mark.parametrize("in_channels,num_classes,recommended", [(1, 10, False), (3, 7, True)])
@pytest.mark.parametrize("name", NAMES)
def test_builds_at_32_and_one_sgd_step_changes_the_weights(name, in_channels, num_classes, recommended):
    torch.manual_seed(0)
    options = dict(ARCHITECTURES[name].recommended) if recommended else {}
    model = build_model(name, in_channels=in_channels, num_classes=num_classes, input_size=32,
                        width=default_width(name), **options)
    params = [p for p in model.parameters()]
    before = [p.detach().clone() for p in params]
    opt = torch.optim.SGD(params, lr=0.1)
    x, y = torch.randn(4, in_channels, 32, 32), torch.randint(0, num_classes, (4,))
    logits = model(x)
    assert logits.shape == (4, num_classes)
    loss = F.cross_entropy(logits, y)
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    # Every parameter is reached by a finite, nonzero gradient...
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
               for p in params)
    changed = [not torch.equal(b, p.detach()) for b, p in zip(before, params)]
    assert changed[-1]
    # ...but without BatchNorm, PyTorch's default init lets the deep nets' first-layer gradients
    # vanish below float32 resolution (the plain-18 demo; measured ~1e-9 for MobileNetV2), so
    # only with BatchNorm must the first layer, furthest from the loss, visibly learn.
    if options.get("batchnorm") or name in ("lenet5", "alexnet", "vgg11", "simplecnn"):
        assert changed[0] and sum(changed) >= 0.8 * len(changed)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("size", [28, 29, 45, 64])
@pytest.mark.parametrize("name", NAMES)
def test_any_input_size_from_28_works(name, size, pooling):
    model = build_model(name, in_channels=3, num_classes=5, input_size=size, width=default_width(name),
                        batchnorm=True, pooling=pooling).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


def test_tiny_width_still_gives_at_least_one_channel():
    model = build_model("vgg11", width=0.001)
    assert model.features.conv1_1.out_channels == 1
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_width_scales_channels():
    assert build_model("vgg16", width=0.25).features.conv1_1.out_channels == 16
    assert build_model("resnet18", width=0.5).layer4[1].conv2.out_channels == 256
    assert build_model("lenet5", width=2.0).C3.out_channels == 32


# --- options -------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("name", NAMES)
def test_every_activation_module_follows_the_option(name, activation):
    model = build_model(name, width=default_width(name), activation=activation)
    present = {cls for cls in ACTIVATION_TYPES.values() if count(model, cls)}
    assert present == {ACTIVATION_TYPES[activation]}
    # Separate, non-inplace modules: an in-place one would overwrite what a hook just saw.
    assert all(not getattr(m, "inplace", False) for m in model.modules())


@pytest.mark.parametrize("name", [n for n in NAMES if "pooling" in ARCHITECTURES[n].options] + ["resnet18"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_pooling_option_sets_every_pool(name, pooling):
    # ResNet only has its stem pool in the ImageNet layout, from 64x64 up.
    size = 64 if name == "resnet18" else 32
    model = build_model(name, width=default_width(name), input_size=size, pooling=pooling)
    wanted, other = (nn.MaxPool2d, nn.AvgPool2d) if pooling == "max" else (nn.AvgPool2d, nn.MaxPool2d)
    assert count(model, wanted) >= 1 and count(model, other) == 0


@pytest.mark.parametrize("name", NAMES)
def test_options_not_listed_by_the_spec_change_nothing_at_32(name):
    spec = ARCHITECTURES[name]
    base = build_model(name, width=spec.default_width)
    variants = {"pooling": dict(pooling="avg"), "activation": dict(activation="tanh"),
                "batchnorm": dict(batchnorm=True), "dropout": dict(dropout=0.3)}
    for option, kwargs in variants.items():
        changed = build_model(name, width=spec.default_width, **kwargs)
        differs = [type(m) for m in base.modules()] != [type(m) for m in changed.modules()]
        assert differs == (option in spec.options), option


@pytest.mark.parametrize("name", NAMES)
def test_batchnorm_follows_every_conv_when_on_and_is_absent_when_off(name):
    on = build_model(name, width=default_width(name), batchnorm=True)
    off = build_model(name, width=default_width(name), batchnorm=False)
    assert count(on, nn.BatchNorm2d) == count(on, nn.Conv2d) > 0
    assert count(off, nn.BatchNorm2d) == 0
    # BN's shift makes a conv bias redundant; without BN the bias is needed.
    assert all(m.bias is None for m in on.modules() if isinstance(m, nn.Conv2d))
    assert all(m.bias is not None for m in off.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("name", NAMES)
def test_dropout_sits_in_the_classifier_head(name):
    model = build_model(name, width=default_width(name), dropout=0.4)
    dropouts = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(m.p == pytest.approx(0.4) for _, m in dropouts)
    order = [n for n, _ in model.named_modules()]
    last_conv = max(i for i, (n, m) in enumerate(model.named_modules()) if isinstance(m, nn.Conv2d))
    assert all(order.index(n) > last_conv for n, _ in dropouts)
    assert count(build_model(name, width=default_width(name)), nn.Dropout) == 0


def test_dropout_is_active_in_training_only():
    torch.manual_seed(0)
    model = build_model("simplecnn", in_channels=3, dropout=0.5)
    x = torch.randn(2, 3, 32, 32)
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


# --- layouts -------------------------------------------------------------------------------

def _output_shapes(model, x, names):
    shapes, handles = {}, []
    modules = dict(model.named_modules())
    for n in names:
        handles.append(modules[n].register_forward_hook(
            lambda mod, inp, out, n=n: shapes.__setitem__(n, tuple(out.shape[1:]))))
    model(x)
    for h in handles:
        h.remove()
    return shapes


def test_lenet5_has_the_1998_layer_shapes_at_32():
    model = build_model("lenet5")
    shapes = _output_shapes(model, torch.randn(1, 1, 32, 32), ["C1", "S2", "C3", "S4", "C5", "F6", "output"])
    assert shapes == {"C1": (6, 28, 28), "S2": (6, 14, 14), "C3": (16, 10, 10), "S4": (16, 5, 5),
                      "C5": (120, 1, 1), "F6": (84,), "output": (10,)}
    assert n_params(model) == 61706  # the classic count with a linear output layer


@pytest.mark.parametrize("size", [28, 29, 64])
def test_lenet5_c5_covers_the_whole_s4_map_at_other_sizes(size):
    model = build_model("lenet5", input_size=size)
    shapes = _output_shapes(model, torch.randn(1, 1, size, size), ["C1", "C5"])
    assert shapes["C1"] == (6, size - 4, size - 4) and shapes["C5"] == (120, 1, 1)


def test_layers_carry_readable_names():
    def names(m):
        return set(dict(m.named_modules()))

    assert {"C1", "C1_act", "S2", "C3", "S4", "C5", "F6", "F6_act", "output"} <= names(build_model("lenet5"))
    assert {"features.conv1_1", "features.act1_1", "features.pool1", "features.conv5_3",
            "classifier.fc6", "classifier.fc8"} <= names(build_model("vgg16", width=0.1))
    assert {"features.conv1", "features.pool5", "classifier.fc7"} <= names(build_model("alexnet", width=0.1))
    assert {"conv1", "layer1.0.conv1", "layer1.0.act1", "layer1.0.act2", "layer2.0.downsample",
            "fc"} <= names(build_model("resnet18", width=0.1))
    assert {"inception3a.branch1x1.conv", "inception3a.branch5x5.conv_reduce",
            "inception5b.branch_pool.pool"} <= names(build_model("googlenet", width=0.1))
    assert {"features.stem.conv", "features.block2.expand.conv", "features.block2.depthwise.conv",
            "features.block2.project.conv", "features.head.conv"} <= names(build_model("mobilenetv2", width=0.1))


@pytest.mark.parametrize("name,expected,batchnorm", [
    ("resnet18", 11_689_512, True),      # torchvision resnet18
    ("vgg16", 138_357_544, False),       # torchvision vgg16
    ("vgg11", 132_863_336, False),       # torchvision vgg11
    ("alexnet", 61_100_840, False),      # torchvision alexnet
    ("mobilenetv2", 3_504_872, True),    # torchvision mobilenet_v2
    # torchvision's 6,624,904 uses 3x3 in the "5x5" branch; the paper's 5x5 adds 380,928.
    ("googlenet", 6_624_904 + 380_928, True),
])
def test_full_width_imagenet_parameter_counts(name, expected, batchnorm):
    with torch.device("meta"):  # count without allocating 500 MB of VGG weights
        model = build_model(name, in_channels=3, num_classes=1000, input_size=224, batchnorm=batchnorm)
    assert n_params(model) == expected


def test_full_width_224_layouts_downsample_like_the_papers():
    shapes = _output_shapes(build_model("resnet18", in_channels=3, input_size=224, width=0.125),
                            torch.randn(1, 3, 224, 224), ["maxpool", "layer4"])
    assert shapes["maxpool"][1:] == (56, 56) and shapes["layer4"][1:] == (7, 7)
    shapes = _output_shapes(build_model("googlenet", in_channels=3, input_size=224, width=0.125),
                            torch.randn(1, 3, 224, 224), ["maxpool1", "inception3a", "inception5b"])
    assert shapes["maxpool1"][1:] == (56, 56) and shapes["inception3a"][1:] == (28, 28)
    assert shapes["inception5b"][1:] == (7, 7)


def test_inception_concatenates_its_four_branches():
    block = build_model("googlenet", width=1.0).inception3a
    assert isinstance(block, Inception)
    assert block.branch5x5.conv.kernel_size == (5, 5) and block.branch3x3.conv.kernel_size == (3, 3)
    x = torch.randn(2, 192, 8, 8)
    out = block(x)
    assert out.shape == (2, 64 + 128 + 32 + 32, 8, 8) == (2, block.out_channels, 8, 8)
    parts = [block.branch1x1(x), block.branch3x3(x), block.branch5x5(x), block.branch_pool(x)]
    assert torch.equal(out, torch.cat(parts, dim=1))


def test_mobilenet_blocks_are_depthwise_with_linear_projection_and_skips():
    model = build_model("mobilenetv2", width=1.0, batchnorm=True)
    blocks = [m for m in model.modules() if isinstance(m, InvertedResidual)]
    assert len(blocks) == 17
    for block in blocks:
        dw = block.depthwise.conv
        assert dw.groups == dw.in_channels == dw.out_channels and dw.kernel_size == (3, 3)
        assert not any(type(m) in ACTIVATION_TYPES.values() for m in block.project.modules())
    assert [b.use_skip for b in blocks].count(True) == 10  # torchvision's count
    # A skip block adds its input back: with the projection zeroed its output is its input.
    block = model.features.block3
    assert block.use_skip
    nn.init.zeros_(block.project.bn.weight)
    nn.init.zeros_(block.project.bn.bias)
    x = torch.randn(2, block.project.conv.out_channels, 8, 8)
    assert torch.allclose(block(x), x)


# --- residual versus plain -----------------------------------------------------------------

def _zero_block(block):
    for conv in (block.conv1, block.conv2):
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)


def test_plain18_has_no_skip_connection_and_resnet18_does():
    torch.manual_seed(0)
    residual = build_model("resnet18", width=0.25)
    plain = build_model("plain18", width=0.25)
    for model in (residual, plain):
        _zero_block(model.layer2[1])
    x = torch.randn(2, 32, 8, 8)
    assert torch.equal(residual.layer2[1](x), torch.relu(x))             # act(0 + x)
    assert torch.equal(plain.layer2[1](x), torch.zeros_like(x))          # act(0)
    assert isinstance(plain.layer2[1], BasicBlock) and not plain.layer2[1].residual
    downsample_params = sum(n_params(m.downsample) for m in residual.modules()
                            if isinstance(m, BasicBlock) and m.downsample is not None)
    assert downsample_params > 0
    assert n_params(plain) == n_params(residual) - downsample_params


def test_without_batchnorm_gradients_vanish_in_plain18_but_not_resnet18():
    grads = {}
    for name in ("resnet18", "plain18"):
        torch.manual_seed(0)
        model = build_model(name, in_channels=3, width=0.25)
        x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
        F.cross_entropy(model(x), y).backward()
        grads[name] = model.conv1.weight.grad.norm().item()
    # Measured: a ratio of about 1e5 at this seed; the demo needs it to be glaring.
    assert grads["resnet18"] > 1000 * grads["plain18"]


def test_simplecnn_weights_fit_in_two_megabytes():
    model = build_model("simplecnn", in_channels=3, num_classes=4)
    assert n_params(model) * 4 <= 2 * 1024 * 1024


# --- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,mentions", [
    (dict(name="lenet"), "lenet5"),
    (dict(name="lenet5", activation="swish"), "leaky_relu"),
    (dict(name="lenet5", pooling="min"), "avg"),
    (dict(name="lenet5", input_size=27), "input_size"),
    (dict(name="lenet5", input_size=32.0), "input_size"),
    (dict(name="lenet5", in_channels=0), "in_channels"),
    (dict(name="lenet5", num_classes=0), "num_classes"),
    (dict(name="lenet5", width=0), "width"),
    (dict(name="lenet5", width=float("nan")), "width"),
    (dict(name="lenet5", dropout=1.0), "dropout"),
    (dict(name="lenet5", dropout=float("nan")), "dropout"),
    (dict(name="lenet5", batchnorm="yes"), "batchnorm"),
])
def test_bad_names_and_options_raise_value_error_naming_the_valid_ones(kwargs, mentions):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=mentions):
        build_model(name, **kwargs)
