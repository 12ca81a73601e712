"""Hostile, damaged and odd model files: one clear LoadError naming the file, and nothing else changes.

"Nothing else changes" is checked by :func:`refused`: the folder's files, the
imported modules and a model loaded earlier are the same after the failure.
"""
from __future__ import annotations

import errno
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch
import torch.nn as nn

from visualizer.core.checkpoint import (
    ArchitectureRequired,
    SaveError,
    inspect_model_file,
    load_model,
    load_user_model,
    save_checkpoint,
    sweep_stale_temp,
)
from visualizer.core.errors import LoadError, TrustRequired
from visualizer.core.model_bundle import ModelBundle

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))


TINY_SRC = textwrap.dedent("""
    import torch, torch.nn as nn
    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(2)
            self.fc = nn.Linear(8, 3)
        def forward(self, x):
            return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))
""")


class Evil:
    """Unpickling this creates a file: proof that code from the file ran."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.fixture
def tiny(tmp_path):
    torch.manual_seed(0)
    net = TinyNet()
    src = tmp_path / "tiny.py"
    src.write_text(TINY_SRC)
    return net, f"{src}:TinyNet"


@pytest.fixture
def current(tmp_path, tiny):
    """A model already loaded in the app: a failed load must leave it exactly as it was."""
    net, spec = tiny
    path = tmp_path / "current.pt"
    save_checkpoint(path, ModelBundle(model=net, input_shape=(1, 8, 8), class_names=("a", "b", "c"), arch=spec))
    bundle = load_model(path, model_spec=spec)
    return bundle, {k: v.clone() for k, v in bundle.model.state_dict().items()}


def refused(path, current, call=None, error=LoadError, **kwargs) -> LoadError:
    """Run the load, expect ``error`` naming ``path``; check files, modules and ``current`` unchanged."""
    folder = os.path.dirname(path)
    files_before = sorted(os.listdir(folder))
    modules_before = set(sys.modules)
    with pytest.raises(error) as info:
        (call or load_model)(path, **kwargs)
    err = info.value
    assert str(path) in str(err), str(err)
    assert err.problem
    assert sorted(os.listdir(folder)) == files_before
    # lazily imported parts of this program are fine; an imported user file must not linger
    assert {m for m in set(sys.modules) - modules_before if not m.startswith(("visualizer.", "torch"))} == set()
    bundle, weights = current
    assert all(torch.equal(bundle.model.state_dict()[k], v) for k, v in weights.items())
    return err


def test_empty_file(tmp_path, current):
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    assert "empty" in refused(p, current).problem
    assert "empty" in refused(p, current, call=inspect_model_file).problem


def test_random_bytes(tmp_path, current):
    p = tmp_path / "random.pt"
    p.write_bytes(torch.Generator().manual_seed(1).bytes(100) if hasattr(torch.Generator, "bytes")
                  else bytes(torch.randint(0, 256, (100,), generator=torch.Generator().manual_seed(1)).tolist()))
    assert "not a model file" in refused(p, current).problem
    assert inspect_model_file(p).format == "unknown"


def test_checkpoint_truncated_at_half(tmp_path, current, tiny):
    net, spec = tiny
    good = tmp_path / "good.pt"
    save_checkpoint(good, ModelBundle(model=net, input_shape=(1, 8, 8), class_names=("a", "b", "c"), arch=spec))
    data = good.read_bytes()
    p = tmp_path / "half.pt"
    p.write_bytes(data[: len(data) // 2])
    err = refused(p, current, model_spec=spec)
    assert "truncated" in err.problem


def test_flipped_byte_in_tensor_is_caught_by_crc(tmp_path, current, tiny):
    net, _ = tiny
    p = tmp_path / "flip.pt"
    torch.save(net.state_dict(), p)
    with zipfile.ZipFile(p) as zf:
        member = next(i for i in zf.infolist() if "/data/" in i.filename and not i.filename.endswith("/"))
    raw = bytearray(p.read_bytes())
    name_len = int.from_bytes(raw[member.header_offset + 26: member.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[member.header_offset + 28: member.header_offset + 30], "little")
    raw[member.header_offset + 30 + name_len + extra_len] ^= 0x40
    p.write_bytes(bytes(raw))
    torch.load(p, weights_only=True)  # torch itself would load it silently, with other weights
    err = refused(p, current, model_spec=tiny[1])
    assert "checksum" in err.problem and member.filename in err.problem


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "_orig_mod.module."])
def test_prefixed_state_dict_keys_are_stripped(tmp_path, tiny, prefix):
    net, spec = tiny
    p = tmp_path / "prefixed.pt"
    torch.save({prefix + k: v for k, v in net.state_dict().items()}, p)
    b = load_model(p, model_spec=spec)
    assert all(torch.equal(b.model.state_dict()[k], v) for k, v in net.state_dict().items())


def test_missing_and_unexpected_keys_are_both_listed(tmp_path, current, tiny):
    net, spec = tiny
    sd = dict(net.state_dict())
    sd.pop("fc.bias")
    sd["extra.weight"] = torch.zeros(2)
    p = tmp_path / "keys.pt"
    torch.save(sd, p)
    err = refused(p, current, model_spec=spec)
    assert "missing from the file: fc.bias" in err.problem
    assert "not in the model: extra.weight" in err.problem


def test_shape_mismatch_is_listed(tmp_path, current, tiny):
    net, spec = tiny
    sd = dict(net.state_dict())
    sd["fc.weight"] = torch.zeros(5, 8)
    p = tmp_path / "shape.pt"
    torch.save(sd, p)
    err = refused(p, current, model_spec=spec)
    assert "fc.weight model [3, 8] file [5, 8]" in err.problem


def test_zoo_mismatch_is_listed(tmp_path, current, tiny):
    p = tmp_path / "tiny_for_lenet.pt"
    torch.save(tiny[0].state_dict(), p)
    err = refused(p, current, arch="lenet5")
    assert "lenet5" in err.problem and "conv.weight" in err.problem


def test_general_checkpoint_dict_is_unwrapped(tmp_path, tiny):
    net, spec = tiny
    opt = torch.optim.Adam(net.parameters())
    p = tmp_path / "general.tar"
    torch.save({"epoch": 4, "model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict(),
                "loss": 0.5, "class_names": ["x", "y", "z"]}, p)
    b = load_model(p, model_spec=spec)
    assert all(torch.equal(b.model.state_dict()[k], v) for k, v in net.state_dict().items())
    assert b.class_names == ("x", "y", "z")


def test_dict_without_weights_says_what_it_found(tmp_path, current):
    p = tmp_path / "nothing.pt"
    torch.save({"epoch": 1, "notes": "hi"}, p)
    err = refused(p, current, arch="lenet5")
    assert "no model weights" in err.problem and "'epoch'" in err.problem


def test_whole_pickled_model_needs_trust(tmp_path, current):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 26 * 26, 3))
    p = tmp_path / "whole.pt"
    torch.save(model, p)
    err = refused(p, current, error=TrustRequired)
    info = err.info
    assert info.format == "pickled_model" and info.needs_trust and info.size == p.stat().st_size
    import hashlib
    assert info.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert "torch.nn.modules.container.Sequential" in info.unsafe_globals
    assert inspect_model_file(p) == info

    b = load_model(p, trust=True)
    assert isinstance(b.model, nn.Sequential) and b.probeable
    assert b.meta["trusted_load"] and any("safetensors" in w for w in b.warnings)
    assert b.input_shape == (1, 28, 28) and len(b.class_names) == 3  # found by trying sizes: 32 fails
    # trusting a specific hash loads exactly those bytes; a swapped file is refused again
    assert load_model(p, trust=info.sha256).probeable
    torch.save(nn.Sequential(nn.Flatten()), p)
    with pytest.raises(TrustRequired, match="changed since"):
        load_model(p, trust=info.sha256)


@pytest.mark.parametrize("how", ["torch.save", "pickle protocol 4"])
def test_reduce_payload_never_runs_without_trust(tmp_path, current, how):
    target = tmp_path / "pwned.txt"
    p = tmp_path / "evil.pt"
    payload = {"weight": torch.zeros(2), "x": Evil(target)}
    if how == "torch.save":
        torch.save(payload, p)
    else:
        p.write_bytes(pickle.dumps(payload, protocol=4))
    err = refused(p, current, error=TrustRequired, arch="lenet5")
    assert not target.exists()
    assert any(g.endswith("open") for g in err.info.unsafe_globals), err.info.unsafe_globals
    info = inspect_model_file(p)
    assert not target.exists() and info.needs_trust and info.format == "pickled_model"


def test_torchscript_needs_trust_and_is_not_probeable(tmp_path, current, tiny):
    p = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(tiny[0]), str(p))
    err = refused(p, current, error=TrustRequired)
    assert err.info.format == "torchscript" and "TorchScript" in err.problem
    b = load_model(p, trust=True)
    assert b.probeable is False and any("cannot be probed" in w for w in b.warnings)
    x = torch.randn(1, 1, 8, 8)
    assert torch.allclose(b.model(x), tiny[0](x))


def test_pt2_needs_trust_then_loads(tmp_path, current, tiny):
    p = tmp_path / "exported.pt2"
    torch.export.save(torch.export.export(tiny[0], (torch.zeros(1, 1, 12, 12),)), p)
    err = refused(p, current, error=TrustRequired)
    assert err.info.format == "pt2"
    b = load_model(p, trust=True)
    assert b.probeable is False and b.input_shape == (1, 12, 12)
    x = torch.randn(1, 1, 12, 12)
    assert torch.allclose(b.model(x), tiny[0](x))


def test_nan_weights_load_with_a_warning(tmp_path, tiny):
    net, spec = tiny
    sd = dict(net.state_dict())
    sd["conv.weight"] = sd["conv.weight"].clone()
    sd["conv.weight"][0, 0, 0, 0] = float("nan")
    sd["fc.bias"] = torch.tensor([0.0, float("inf"), 1.0])
    p = tmp_path / "nan.pt"
    torch.save(sd, p)
    b = load_model(p, model_spec=spec)
    warning = next(w for w in b.warnings if "NaN" in w)
    assert "2 weight value(s)" in warning and "conv.weight" in warning and "fc.bias" in warning


def test_checkpoint_saved_on_cuda_loads_on_cpu(tmp_path, tiny, monkeypatch):
    net, spec = tiny
    p = tmp_path / "cuda.pt"
    # torch.save records each storage's device through serialization.location_tag: tag them as
    # cuda:0 exactly as a GPU save would (this machine has no GPU to make a real one).
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    torch.save(net.state_dict(), p)
    monkeypatch.undo()
    with zipfile.ZipFile(p) as zf:
        assert b"cuda:0" in zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(p, weights_only=True)  # what a loader without map_location would hit
    b = load_model(p, model_spec=spec)
    assert all(t.device.type == "cpu" for t in b.model.state_dict().values())
    assert all(torch.equal(b.model.state_dict()[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("case", ["syntax", "missing_name", "needs_args", "not_a_module", "no_colon", "no_file"])
def test_bad_user_model_specs(tmp_path, current, case):
    src = tmp_path / "user_net.py"
    body = {
        "syntax": "import torch.nn as nn\n\nclass Net(nn.Module)\n    pass\n",
        "missing_name": "import torch.nn as nn\nclass Other(nn.Module):\n    pass\ndef build():\n    return Other()\n",
        "needs_args": "import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self, depth, width=2):\n"
                      "        super().__init__()\n",
        "not_a_module": "def Net():\n    return 42\n",
    }.get(case, "")
    src.write_text(body)
    spec = {"no_colon": str(src), "no_file": f"{tmp_path / 'absent.py'}:Net"}.get(case, f"{src}:Net")
    w = tmp_path / "w.pt"
    torch.save({"fc.weight": torch.zeros(1)}, w)
    modules_before = set(sys.modules)
    for call, target in ((load_user_model, spec), (lambda path, **k: load_model(w, model_spec=spec), spec)):
        with pytest.raises(LoadError) as info:
            call(target)
        msg = str(info.value)
        expected_path = str(tmp_path / "absent.py") if case == "no_file" else str(src)
        assert expected_path in msg
        assert {"syntax": "syntax error on line 3", "missing_name": "has no 'Net'",
                "needs_args": "needs arguments: depth", "not_a_module": "returned a int",
                "no_colon": "file.py:Name", "no_file": "not found"}[case] in msg, msg
    if case == "missing_name":
        assert "available: Other, build" in msg
    assert {m for m in set(sys.modules) - modules_before if m.startswith("_cnnvis_user_")} == set()


def test_file_over_size_limit_is_refused_before_reading(tmp_path, current, tiny, monkeypatch):
    p = tmp_path / "big.pt"
    torch.save(tiny[0].state_dict(), p)

    def must_not_read(*a, **k):
        raise AssertionError("the file was read")

    monkeypatch.setattr(torch, "load", must_not_read)
    monkeypatch.setattr(zipfile, "ZipFile", must_not_read)
    err = refused(p, current, max_bytes=100, model_spec=tiny[1])
    assert "over the limit of 100" in err.problem


def test_missing_file_and_folder(tmp_path, current):
    assert "not found" in refused(tmp_path / "nope.pt", current).problem
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(LoadError, match="folder"):
        load_model(tmp_path / "dir.pt")


def test_full_disk_during_save_keeps_old_checkpoint(tmp_path, tiny, monkeypatch):
    net, spec = tiny
    p = tmp_path / "m.pt"
    bundle = ModelBundle(model=net, input_shape=(1, 8, 8), class_names=("a", "b", "c"), arch=spec)
    save_checkpoint(p, bundle)
    before = p.read_bytes()
    real_save = torch.save

    def save_until_disk_full(obj, f, *a, **k):
        f.write(b"PK\x03\x04" + b"\0" * 1000)  # some bytes reach the disk, then it is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", save_until_disk_full)
    with torch.no_grad():
        net.fc.bias.add_(1.0)
    with pytest.raises(SaveError) as info:
        save_checkpoint(p, bundle)
    monkeypatch.setattr(torch, "save", real_save)
    assert isinstance(info.value, LoadError) and str(p) in str(info.value)
    assert "No space left" in str(info.value) and "unchanged" in str(info.value)
    assert p.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.pt", "tiny.py"]
    assert not torch.equal(load_model(p, model_spec=spec).model.fc.bias, net.fc.bias)


def test_process_killed_during_save(tmp_path, tiny):
    """A real torch.save of a large state dict, SIGKILLed mid-write by the test."""
    net, spec = tiny
    p = tmp_path / "m.pt"
    save_checkpoint(p, ModelBundle(model=net, input_shape=(1, 8, 8), class_names=("a", "b", "c"), arch=spec))
    child = textwrap.dedent(f"""
        import sys, torch
        from visualizer.core.checkpoint import atomic_write

        class StallingFile:
            # forwards writes; after 1 MB tells the parent and blocks on stdin until killed
            def __init__(self, f): self.f, self.n, self.told = f, 0, False
            def write(self, b):
                self.f.write(b); self.n += len(b)
                if self.n > (1 << 20) and not self.told:
                    self.f.flush(); self.told = True
                    print("mid-write", flush=True); sys.stdin.read()
                return len(b)
            def flush(self): self.f.flush()
            def fileno(self): return self.f.fileno()

        big = {{"w%d" % i: torch.zeros(256, 1024) for i in range(8)}}  # 8 MB
        atomic_write({str(p)!r}, lambda f: torch.save(big, StallingFile(f)))
        print("finished", flush=True)
    """)
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "mid-write", proc.stderr.read()
        (temp,) = tmp_path.glob(f".m.pt.cnnvis-{proc.pid}-*.tmp")
        assert temp.stat().st_size > (1 << 20)
        # Aged past the grace period but still locked by its live writer: a save in progress stays.
        os.utime(temp, (temp.stat().st_atime - 3600, temp.stat().st_mtime - 3600))
        assert sweep_stale_temp(tmp_path) == [] and temp.exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    b = load_model(p, model_spec=spec)  # the previous checkpoint is intact
    assert all(torch.equal(b.model.state_dict()[k], v) for k, v in net.state_dict().items())
    assert temp.exists()
    assert sweep_stale_temp(tmp_path) == [temp]  # what the app does at its next start
    assert not temp.exists()


def test_state_dict_without_model_asks_for_architecture(tmp_path, current, tiny):
    p = tmp_path / "bare.pt"
    torch.save(tiny[0].state_dict(), p)
    err = refused(p, current, error=ArchitectureRequired)
    assert "file.py:Name" in err.hint
    assert inspect_model_file(p).format == "state_dict"


def test_legacy_non_zip_files(tmp_path, current, tiny):
    net, spec = tiny
    sd_path, whole_path = tmp_path / "old_sd.pt", tmp_path / "old_whole.pt"
    torch.save(net.state_dict(), sd_path, _use_new_zipfile_serialization=False)
    torch.save(net, whole_path, _use_new_zipfile_serialization=False)
    b = load_model(sd_path, model_spec=spec)
    assert all(torch.equal(b.model.state_dict()[k], v) for k, v in net.state_dict().items())
    err = refused(whole_path, current, error=TrustRequired)
    assert any(g.endswith("TinyNet") for g in err.info.unsafe_globals), err.info.unsafe_globals
    assert inspect_model_file(whole_path).needs_trust


def test_truncated_safetensors(tmp_path, current, tiny):
    from safetensors.torch import save_file

    good = tmp_path / "w.safetensors"
    save_file(tiny[0].state_dict(), str(good))
    p = tmp_path / "cut.safetensors"
    p.write_bytes(good.read_bytes()[:-40])
    assert "safetensors file is damaged" in refused(p, current, model_spec=tiny[1]).problem


def test_hostile_checkpoint_metadata_is_refused_with_the_file_name(tmp_path):
    """Normalisation that does not fit the input, and sizes that would exhaust memory."""
    from visualizer.core.architectures import build_model
    from visualizer.core.checkpoint import save_checkpoint
    from visualizer.core.model_bundle import ModelBundle

    def saved(name, **changes):
        bundle = ModelBundle(build_model("lenet5"), (1, 32, 32), tuple("0123456789"), arch="lenet5",
                             arch_options={"in_channels": 1, "num_classes": 10, "input_size": 32})
        for k, v in changes.items():
            setattr(bundle, k, v)
        path = tmp_path / name
        save_checkpoint(path, bundle)
        return path

    for path, fragment in ((saved("mean.pt", mean=(0.1, 0.2)), "mean has 2 values"),
                           (saved("huge.pt", arch_options={"in_channels": 1, "num_classes": 2**40}), "num_classes"),
                           (saved("side.pt", input_shape=(1, 10**6, 32)), "input shape")):
        with pytest.raises(LoadError) as e:
            load_model(path)
        assert str(path) in str(e.value) and fragment in str(e.value)
