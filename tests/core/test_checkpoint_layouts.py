"""Checkpoints as people save them: every file here is written the way its tool writes it.

Each layout must load exactly when ``nn.Module.load_state_dict`` would accept the fitted keys,
and the bundle's warnings must say what was adapted (the prefix rule, entries left out, counters
PyTorch filled in) and what else the file holds.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn

from tests.extras import require
from visualizer.core.checkpoint import inspect_model_file, load_model, load_user_model
from visualizer.core.errors import LoadError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A CIFAR tutorial-shaped model with BatchNorm, as user code in its own file.
NET_SRC = textwrap.dedent("""
    import torch, torch.nn as nn, torch.nn.functional as F

    class Net(nn.Module):
        def __init__(self, num_classes=4):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(6)
            self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(8)
            self.fc = nn.Linear(8 * 4 * 4, num_classes)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
            x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
            return self.fc(torch.flatten(x, 1))

    class Wrapped(nn.Module):
        # holds the saved network under an attribute: its keys are "net.conv1.weight", ...
        def __init__(self):
            super().__init__()
            self.net = Net()

        def forward(self, x):
            return self.net(x)

    class HasModuleAttr(nn.Module):
        # a real submodule called "module": its keys must not be stripped
        def __init__(self):
            super().__init__()
            self.module = nn.Linear(3 * 16 * 16, 4)

        def forward(self, x):
            return self.module(torch.flatten(x, 1))
""")


@pytest.fixture
def net(tmp_path):
    """(a trained-looking Net with non-trivial BatchNorm statistics, its spec "file.py:Net")."""
    src = tmp_path / "cifar_net.py"
    src.write_text(NET_SRC)
    spec = f"{src}:Net"
    torch.manual_seed(0)
    model = load_user_model(spec)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 16, 16))   # moves running_mean/var and num_batches_tracked
    model.eval()
    return model, spec


def same_weights(model, reference, skip=()) -> bool:
    got, want = model.state_dict(), reference.state_dict()
    return got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want if k not in skip)


def note(bundle, fragment) -> str:
    hit = [w for w in bundle.warnings if fragment in w]
    assert hit, f"no warning mentions {fragment!r}: {bundle.warnings}"
    return hit[0]


def old_pytorch_state_dict(model) -> OrderedDict:
    """What PyTorch before 0.4.1 saved: no num_batches_tracked buffers and no ``_metadata`` versions
    (both arrived together in 0.4.1), written in the legacy (pre-1.6, non-zip) format."""
    return OrderedDict((k, v.clone()) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked"))


# --- old PyTorch -----------------------------------------------------------------------------------

def test_old_pytorch_state_dict_loads_as_load_state_dict_allows(tmp_path, net):
    model, spec = net
    p = tmp_path / "old_cifar.pth"
    torch.save(old_pytorch_state_dict(model), p, _use_new_zipfile_serialization=False)
    raw = torch.load(p, weights_only=True)
    assert not hasattr(raw, "_metadata") and "bn1.num_batches_tracked" not in raw
    load_user_model(spec).load_state_dict(raw)           # what plain PyTorch accepts ...

    b = load_model(p, model_spec=spec)                   # ... this accepts too
    assert same_weights(b.model, model, skip={"bn1.num_batches_tracked", "bn2.num_batches_tracked"})
    assert int(b.model.bn1.num_batches_tracked) == 0     # filled in; the running statistics are the file's
    assert torch.equal(b.model.bn2.running_var, model.bn2.running_var)
    text = note(b, "num_batches_tracked")
    assert "2 BatchNorm layer(s) (bn1, bn2)" in text and "before 0.4.1" in text


def test_old_zoo_state_dict_with_batchnorm_fits_inferred_options(tmp_path):
    from visualizer.core.architectures import build_model

    torch.manual_seed(1)
    model = build_model("lenet5", in_channels=1, num_classes=10, input_size=32, batchnorm=True)
    p = tmp_path / "old_lenet.pth"
    torch.save(old_pytorch_state_dict(model), p, _use_new_zipfile_serialization=False)
    b = load_model(p, arch="lenet5")
    assert b.arch_options["batchnorm"] is True
    assert same_weights(b.model, model, skip={k for k in model.state_dict() if k.endswith("num_batches_tracked")})
    note(b, "num_batches_tracked")


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "DataParallel"])
def test_modern_file_missing_the_counter_is_refused_like_load_state_dict_does(tmp_path, wrapped):
    """Versions say BatchNorm 2 (the counter exists since then): PyTorch refuses, so must we; with
    DataParallel's prefix too, whose module versions must follow the keys when 'module.' is removed."""
    src = tmp_path / "cifar_net.py"
    src.write_text(NET_SRC)
    spec = f"{src}:Net"
    net = load_user_model(spec)
    prefix = "module." if wrapped else ""
    sd = (nn.DataParallel(net) if wrapped else net).state_dict()
    assert sd._metadata[f"{prefix}bn1"]["version"] == 2
    del sd[f"{prefix}bn1.num_batches_tracked"]
    p = tmp_path / "edited.pth"
    torch.save(sd, p)
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        (nn.DataParallel(load_user_model(spec)) if wrapped else load_user_model(spec)).load_state_dict(
            torch.load(p, weights_only=True))
    with pytest.raises(LoadError) as err:
        load_model(p, model_spec=spec)
    assert str(p) in str(err.value) and "missing from the file: bn1.num_batches_tracked" in err.value.problem


# --- wrappers: DataParallel, DistributedDataParallel, torch.compile --------------------------------

def test_dataparallel_state_dict(tmp_path, net):
    model, spec = net
    p = tmp_path / "dp.pth"
    torch.save(nn.DataParallel(model).state_dict(), p)   # every key under "module."
    b = load_model(p, model_spec=spec)
    assert same_weights(b.model, model)
    assert "removed the prefix 'module.' that DataParallel/DistributedDataParallel adds" in note(b, "module.")


DDP_SAVE = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    sys.path.insert(0, {folder!r})
    from cifar_net import Net
    dist.init_process_group("gloo", init_method={init!r}, rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        ddp = torch.nn.parallel.DistributedDataParallel(Net())
        torch.save(ddp.state_dict(), {out!r})          # rank 0 saves, as DDP scripts do
        torch.save(ddp.module.state_dict(), {ref!r})
    finally:
        dist.destroy_process_group()
""")


def test_distributed_data_parallel_state_dict(tmp_path, net):
    _, spec = net
    out, ref = tmp_path / "ddp.pt", tmp_path / "ref.pt"
    code = DDP_SAVE.format(folder=str(tmp_path), init=(tmp_path / "pg").as_uri(), out=str(out), ref=str(ref))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert run.returncode == 0, run.stderr[-2000:]
    assert next(iter(torch.load(out, weights_only=True))).startswith("module.")
    b = load_model(out, model_spec=spec)
    reference = torch.load(ref, weights_only=True)
    assert all(torch.equal(b.model.state_dict()[k], v) for k, v in reference.items())
    note(b, "'module.'")


def test_torch_compile_state_dict(tmp_path, net):
    model, spec = net
    compiled = torch.compile(model)
    p = tmp_path / "compiled.pt"
    torch.save(compiled.state_dict(), p)                 # every key under "_orig_mod."
    assert next(iter(compiled.state_dict())).startswith("_orig_mod.")
    b = load_model(p, model_spec=spec)
    assert same_weights(b.model, model)
    assert "'_orig_mod.' that torch.compile adds" in note(b, "_orig_mod.")


def test_prefix_added_when_the_model_wraps_the_saved_network(tmp_path, net):
    model, spec = net
    p = tmp_path / "plain.pt"
    torch.save(model.state_dict(), p)
    b = load_model(p, model_spec=spec.replace(":Net", ":Wrapped"))
    assert same_weights(b.model.net, model)
    assert "added the prefix 'net.'" in note(b, "net.")


def test_a_real_submodule_called_module_is_not_stripped(tmp_path, net):
    _, spec = net
    spec = spec.replace(":Net", ":HasModuleAttr")
    torch.manual_seed(2)
    model = load_user_model(spec)
    p = tmp_path / "own.pt"
    torch.save(model.state_dict(), p)
    b = load_model(p, model_spec=spec)
    assert same_weights(b.model, model) and not any("prefix" in w for w in b.warnings)


def test_real_mismatch_after_a_prefix_rule_is_still_refused_clearly(tmp_path, net):
    model, spec = net
    sd = nn.DataParallel(model).state_dict()
    sd["module.fc.weight"] = torch.zeros(7, 128)
    p = tmp_path / "dp_wrong.pth"
    torch.save(sd, p)
    with pytest.raises(LoadError) as err:
        load_model(p, model_spec=spec)
    problem = err.value.problem
    assert str(p) in str(err.value)
    assert "fc.weight model [4, 128] file [7, 128]" in problem and "removed the prefix 'module.'" in problem
    assert "choose the architecture" in err.value.hint


# --- training dicts --------------------------------------------------------------------------------

def test_imagenet_example_training_checkpoint(tmp_path, net):
    """pytorch/examples imagenet/main.py: DataParallel model, {'epoch', 'arch', 'state_dict', 'best_acc1',
    'optimizer', 'scheduler'} saved as checkpoint.pth.tar; best_acc1 is a tensor there."""
    model, spec = net
    dp = nn.DataParallel(model)
    optimizer = torch.optim.SGD(dp.parameters(), 0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)
    best_acc1 = torch.tensor(61.25)
    p = tmp_path / "checkpoint.pth.tar"
    torch.save({"epoch": 90, "arch": "cifar_net", "state_dict": dp.state_dict(), "best_acc1": best_acc1,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, p)
    b = load_model(p, model_spec=spec)
    assert same_weights(b.model, model)
    text = note(b, "a training dict")
    assert "'state_dict' entry" in text and "epoch=90" in text and "best_acc1=61.25" in text
    assert "not used: optimizer, scheduler" in text
    assert b.meta["saved_with"]["epoch"] == 90 and b.meta["saved_with"]["best_acc1"] == pytest.approx(61.25)
    note(b, "'module.'")


def test_net_acc_epoch_dict_from_an_old_release(tmp_path, net):
    """The CIFAR training script layout {'net': ..., 'acc': ..., 'epoch': ...}, here from an old PyTorch."""
    model, spec = net
    p = tmp_path / "ckpt.pth"
    torch.save({"net": old_pytorch_state_dict(model), "acc": 93.02, "epoch": 199}, p,
               _use_new_zipfile_serialization=False)
    b = load_model(p, model_spec=spec)
    assert same_weights(b.model, model, skip={"bn1.num_batches_tracked", "bn2.num_batches_tracked"})
    assert "'net' entry" in note(b, "a training dict") and "acc=93.02, epoch=199" in note(b, "a training dict")
    note(b, "num_batches_tracked")


# --- Lightning -------------------------------------------------------------------------------------

def _lightning_module(net_model, class_names):
    L = require("lightning", "lightning")

    class CifarClassifier(L.LightningModule):
        def __init__(self, model, lr=0.05, class_names=()):
            super().__init__()
            self.save_hyperparameters(ignore=["model"])
            self.model = model                                  # keys "model.conv1.weight", ...
            # class weights are a buffer: the checkpoint holds "loss_fn.weight" beside the network
            self.loss_fn = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 1.0, 0.5]))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return self.loss_fn(self.model(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)

    return L, CifarClassifier(net_model, class_names=class_names)


def _fit_and_save(tmp_path, module, L):
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(16, 3, 16, 16), torch.randint(0, 4, (16,))), batch_size=8)
    trainer = L.Trainer(max_steps=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(module, data)
    path = tmp_path / "epoch=0-step=1.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_lightning_checkpoint_loads_weights_only(tmp_path, net):
    model, spec = net
    L, module = _lightning_module(model, ["cat", "dog", "ship", "frog"])
    p = _fit_and_save(tmp_path, module, L)
    ck = torch.load(p, weights_only=True)                     # a real Lightning file, readable without code
    assert {"state_dict", "hyper_parameters", "optimizer_states", "pytorch-lightning_version"} <= set(ck)
    assert "loss_fn.weight" in ck["state_dict"] and "model.conv1.weight" in ck["state_dict"]
    info = inspect_model_file(p)
    assert info.format == "state_dict" and not info.needs_trust

    b = load_model(p, model_spec=spec)
    trained = module.model                                   # the weights after the one optimizer step
    assert same_weights(b.model, trained)
    assert b.class_names == ("cat", "dog", "ship", "frog")   # from the hyper-parameters
    text = note(b, "a Lightning checkpoint")
    assert f"Lightning {L.__version__}" in text and "global step 1" in text
    assert "hyper-parameters: lr=0.05" in text and "not used: optimizer_states" in text
    keys = note(b, "took the weights under 'model.'")
    assert "LightningModule's attribute" in keys and "left out 1 entry outside 'model.': loss_fn.weight" in keys
    assert b.meta["saved_with"]["global_step"] == 1 and b.meta["saved_with"]["hyper_parameters"]["lr"] == 0.05


def test_lightning_checkpoint_for_the_wrong_model_is_refused(tmp_path, net):
    model, spec = net
    L, module = _lightning_module(model, [])
    p = _fit_and_save(tmp_path, module, L)
    with pytest.raises(LoadError) as err:
        load_model(p, model_spec=spec.replace(":Net", ":HasModuleAttr"))
    assert str(p) in str(err.value) and "do not fit" in err.value.problem


# --- safetensors -----------------------------------------------------------------------------------

def test_safetensors_with_metadata_from_another_tool(tmp_path, net):
    from safetensors.torch import save_file

    model, spec = net
    p = tmp_path / "model.safetensors"
    # how Hugging Face libraries write weights: a "format" entry, here with a free-form one beside it
    save_file(model.state_dict(), str(p), metadata={"format": "pt", "description": "cifar net, 4 classes"})
    b = load_model(p, model_spec=spec)
    assert same_weights(b.model, model)
    assert "format=pt" in note(b, "safetensors metadata") and "description=cifar net" in note(b, "metadata")
    assert b.meta["saved_with"]["metadata"]["format"] == "pt"
