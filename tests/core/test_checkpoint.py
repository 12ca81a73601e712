"""Checkpoints: self-describing round trip, weights-only loadable, atomic, resumable; other weight formats."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

from visualizer.core.checkpoint import (
    ArchitectureRequired,
    TrustStore,
    atomic_write,
    inspect_model_file,
    load_model,
    load_user_model,
    save_checkpoint,
    save_safetensors,
)
from visualizer.core.model_bundle import ModelBundle


class TinyNet(nn.Module):
    def __init__(self, in_channels=1, num_classes=3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 2, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


def lenet_bundle(seed=0, in_channels=1, num_classes=10, input_size=32) -> ModelBundle:
    from visualizer.core.architectures import build_model

    torch.manual_seed(seed)
    opts = {"in_channels": in_channels, "num_classes": num_classes, "input_size": input_size,
            "width": 0.5, "activation": "tanh", "pooling": "avg", "batchnorm": True, "dropout": 0.0}
    return ModelBundle(model=build_model("lenet5", **opts), input_shape=(in_channels, input_size, input_size),
                       class_names=tuple(f"c{i}" for i in range(num_classes)), mean=(0.25,) * in_channels,
                       std=(0.5,) * in_channels, arch="lenet5", arch_options=opts,
                       meta={"dataset": "digits", "accuracy": np.float32(0.875), "epochs": 2})


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def one_training_step(bundle):
    model = bundle.model
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x = torch.randn(4, *bundle.input_shape)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    opt.step()
    sched.step()
    return opt, sched


def test_round_trip_restores_model_metadata_and_training_state(tmp_path):
    bundle = lenet_bundle()
    opt, sched = one_training_step(bundle)
    rng = torch.get_rng_state()
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": 17, "epoch": 3,
             "torch_rng": rng}
    path = tmp_path / "model.pt"
    save_checkpoint(path, bundle, state)

    loaded = load_model(path)
    assert same_weights(loaded.model, bundle.model)
    assert loaded.arch == "lenet5" and loaded.arch_options == bundle.arch_options
    assert loaded.class_names == bundle.class_names and loaded.input_shape == (1, 32, 32)
    assert loaded.mean == (0.25,) and loaded.std == (0.5,)
    assert loaded.meta["dataset"] == "digits" and loaded.meta["epochs"] == 2
    assert loaded.meta["accuracy"] == pytest.approx(0.875)
    assert loaded.warnings == () and loaded.source == str(path)

    ts = loaded.meta["training_state"]
    assert ts["step"] == 17 and ts["epoch"] == 3
    opt2 = torch.optim.SGD(loaded.model.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(ts["optimizer"])
    for p_old, p_new in zip(bundle.model.parameters(), loaded.model.parameters()):
        assert torch.equal(opt.state[p_old]["momentum_buffer"], opt2.state[p_new]["momentum_buffer"])
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=1, gamma=0.5)
    sched2.load_state_dict(ts["scheduler"])
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert torch.equal(ts["torch_rng"], rng)


def test_checkpoint_loads_with_plain_weights_only_torch_load(tmp_path):
    bundle = lenet_bundle()
    path = tmp_path / "m.pt"
    # a raw numpy RNG state would break weights_only loading: it must be converted on save
    save_checkpoint(path, bundle, {"np_state": np.random.get_state(), "step": np.int64(4)})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "cnn-visualizer-checkpoint" and raw["version"] == 1
    assert raw["arch"] == "lenet5" and raw["input_shape"] == [1, 32, 32]
    assert raw["class_names"] == list(bundle.class_names)
    assert set(raw["state_dict"]) == set(bundle.model.state_dict())
    assert isinstance(raw["training"]["np_state"][1], torch.Tensor) and raw["training"]["step"] == 4
    assert inspect_model_file(path).format == "checkpoint"


def test_unsaveable_training_state_is_refused_before_touching_the_file(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, lenet_bundle(seed=1))
    before = path.read_bytes()
    with pytest.raises(TypeError, match="training.bad"):
        save_checkpoint(path, lenet_bundle(seed=2), {"bad": object()})
    assert path.read_bytes() == before


def test_crash_before_replace_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    old = lenet_bundle(seed=1)
    save_checkpoint(path, old)

    def boom(*a, **k):
        raise RuntimeError("killed before rename")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(RuntimeError):
        save_checkpoint(path, lenet_bundle(seed=2))
    monkeypatch.undo()
    assert same_weights(load_model(path).model, old.model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # the temp file was cleaned up


def test_crash_midway_through_write_keeps_previous_file(tmp_path):
    path = tmp_path / "m.pt"
    old = lenet_bundle(seed=1)
    save_checkpoint(path, old)

    def half_then_fail(f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # even a BaseException must not leave the temp file in place

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_fail)
    assert same_weights(load_model(path).model, old.model)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_state_dict_with_zoo_architecture_infers_options(tmp_path):
    from visualizer.core.architectures import build_model

    torch.manual_seed(0)
    model = build_model("lenet5", in_channels=3, num_classes=5, input_size=28, width=0.5)
    path = tmp_path / "sd.pth"
    torch.save(model.state_dict(), path)

    with pytest.raises(ArchitectureRequired) as err:
        load_model(path)
    assert str(path) in str(err.value) and "which model" in str(err.value)

    b = load_model(path, arch="lenet5")
    assert same_weights(b.model, model)
    assert b.arch_options["in_channels"] == 3 and b.arch_options["num_classes"] == 5
    assert b.arch_options["input_size"] == 28 and b.arch_options["width"] == 0.5
    assert b.input_shape == (3, 28, 28) and b.class_names == tuple("01234")
    assert b.mean == (0.0,) * 3 and b.std == (1.0,) * 3
    assert any("Guessed" in w for w in b.warnings) and any("inferred" in w for w in b.warnings)
    assert inspect_model_file(path).format == "state_dict"


def test_checkpoint_arch_can_be_overridden_and_user_file_is_never_run_on_its_own(tmp_path):
    src = tmp_path / "net.py"
    marker = tmp_path / "ran.txt"
    src.write_text("import pathlib, torch.nn as nn\n"
                   f"pathlib.Path({str(marker)!r}).write_text('ran')\n"
                   "class Net(nn.Module):\n"
                   "    def __init__(self):\n"
                   "        super().__init__(); self.fc = nn.Linear(4, 2)\n"
                   "    def forward(self, x): return self.fc(x.flatten(1))\n")
    spec = f"{src}:Net"
    model = load_user_model(spec)
    marker.unlink()
    bundle = ModelBundle(model=model, input_shape=(1, 2, 2), class_names=("a", "b"), arch=spec)
    path = tmp_path / "user.pt"
    save_checkpoint(path, bundle)
    with pytest.raises(ArchitectureRequired, match="runs that file"):
        load_model(path)
    assert not marker.exists()
    loaded = load_model(path, model_spec=spec)
    assert same_weights(loaded.model, model) and loaded.class_names == ("a", "b") and loaded.arch == spec


def test_user_model_spec_class_and_factory(tmp_path):
    src = tmp_path / "mymodels.py"
    src.write_text("import torch, torch.nn as nn\n"
                   "class Small(nn.Module):\n"
                   "    def __init__(self, k=4):\n"
                   "        super().__init__(); self.conv = nn.Conv2d(1, 3, 3); self.fc = nn.Linear(3, k)\n"
                   "    def forward(self, x):\n"
                   "        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))\n"
                   "def make_small():\n"
                   "    return Small(k=4)\n")
    torch.manual_seed(3)
    reference = load_user_model(f"{src}:Small")
    assert isinstance(reference, nn.Module) and reference.fc.out_features == 4
    assert load_user_model(f"{src}:Small", k=6).fc.out_features == 6
    path = tmp_path / "small.pt"
    torch.save({"module." + k: v for k, v in reference.state_dict().items()}, path)  # DataParallel-style
    for name in ("Small", "make_small"):
        b = load_model(path, model_spec=f"{src}:{name}")
        assert same_weights(b.model, reference)
        assert b.arch == f"{src}:{name}" and b.input_shape[0] == 1 and b.class_names == ("0", "1", "2", "3")


def test_safetensors_round_trip_keeps_metadata(tmp_path):
    bundle = lenet_bundle(in_channels=3, num_classes=4, input_size=28)
    path = tmp_path / "m.safetensors"
    save_safetensors(path, bundle)
    info = inspect_model_file(path)
    assert info.format == "safetensors" and not info.needs_trust
    b = load_model(path)
    assert same_weights(b.model, bundle.model)
    assert (b.arch, b.input_shape, b.class_names, b.mean, b.std) == (
        "lenet5", (3, 28, 28), bundle.class_names, (0.25,) * 3, (0.5,) * 3)
    assert b.meta["dataset"] == "digits"


def test_bare_safetensors_needs_architecture(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = TinyNet()
    path = tmp_path / "w.safetensors"
    save_file(net.state_dict(), str(path))
    src = tmp_path / "tiny.py"
    src.write_text("import torch, torch.nn as nn\n"
                   "class TinyNet(nn.Module):\n"
                   "    def __init__(self):\n"
                   "        super().__init__(); self.conv = nn.Conv2d(1, 2, 3, padding=1)\n"
                   "        self.pool = nn.AdaptiveAvgPool2d(2); self.fc = nn.Linear(8, 3)\n"
                   "    def forward(self, x): return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))\n")
    with pytest.raises(ArchitectureRequired):
        load_model(path)
    assert same_weights(load_model(path, model_spec=f"{src}:TinyNet").model, net)


def test_trust_store_remembers_hashes_in_config_dir(tmp_path):
    sha = "ab" * 32
    store = TrustStore()
    assert not store.is_trusted(sha)
    store.trust(sha.upper())
    assert TrustStore().is_trusted(sha)  # a new instance reads the file
    saved = json.loads((tmp_path.parent / os.environ["CNN_VISUALIZER_CONFIG_DIR"] / "trusted_models.json")
                       .read_text())
    assert saved == {"sha256": [sha]}
    assert not store.is_trusted("cd" * 32) and not store.is_trusted("not a hash")
    store.forget(sha)
    assert not store.is_trusted(sha)
    with pytest.raises(ValueError):
        store.trust("../../etc/passwd")
    store.path.write_text("{ damaged")
    assert not store.is_trusted(sha)  # unreadable store: trust nothing
