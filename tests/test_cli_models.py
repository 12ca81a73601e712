"""One command line for every model: info, render, train and health take the same model arguments.

Each model kind a user has is tried with each command: a zoo name, our checkpoint, a state dict
saved the way tutorials save one (``torch.save(model.state_dict(), path)``) with ``--arch`` a zoo
name or ``file.py:Name``, ``file.py:Name`` alone or with ``--init``, and an ONNX export (info and
render; train and health refuse it). What is checked is what a user sees: the printed table, the
exit status, the one-line error, the checkpoint written and the pixels of the PNGs.
"""
from __future__ import annotations

import importlib.util
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from tests.extras import require
from visualizer.cli import main
from visualizer.core.architectures import build_model
from visualizer.core.checkpoint import load_model

TINY = textwrap.dedent('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class TinyNet(nn.Module):
        """The MNIST tutorials' shape, small: conv, F.max_pool2d, conv, global pool, flatten, linear."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.relu(self.conv2(x))
            x = F.adaptive_avg_pool2d(x, 1)
            return self.fc(torch.flatten(x, 1))


    class NoPoolNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4 * 30 * 30, 10)

        def forward(self, x):
            return self.fc(F.relu(self.conv(x)).flatten(1))
''')
DATA = ["--dataset", "digits", "--limit", "120"]
VIEWS = {"feature_maps", "overview", "filters", "pooling", "activations", "gradients", "probabilities", "curves"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The files a user brings: a model file, state dicts of it and of a zoo model, our checkpoint, an ONNX export."""
    d = tmp_path_factory.mktemp("models")
    (d / "tiny.py").write_text(TINY)
    spec = importlib.util.spec_from_file_location("tiny_for_tests", d / "tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(7)
    tiny = module.TinyNet()
    torch.save(tiny.state_dict(), d / "tiny_state.pt")
    torch.save(build_model("lenet5", in_channels=1, num_classes=10, input_size=32).state_dict(), d / "lenet_state.pt")
    f = {"dir": d, "spec": f"{d / 'tiny.py'}:TinyNet", "nopool": f"{d / 'tiny.py'}:NoPoolNet",
         "state": str(d / "tiny_state.pt"), "lenet_state": str(d / "lenet_state.pt"),
         "checkpoint": str(d / "tiny_checkpoint.pt"), "onnx": str(d / "tiny.onnx"), "tiny": tiny}
    assert main(["train", f["spec"], *DATA, "--epochs", "1", "--batch-size", "32", "--quiet",
                 "--out", f["checkpoint"]]) == 0
    require("onnxscript", "onnx")
    torch.onnx.export(tiny.eval(), (torch.zeros(1, 1, 32, 32),), f["onnx"], dynamo=True, verbose=False)
    return f


def model_args(files, kind: str) -> list[str]:
    return {
        "zoo": ["lenet5"],
        "checkpoint": [files["checkpoint"], "--arch", files["spec"]],
        "state dict + zoo --arch": [files["lenet_state"], "--arch", "lenet5"],
        "state dict + file.py --arch": [files["state"], "--arch", files["spec"]],
        "file.py:Name": [files["spec"]],
        "file.py:Name --init": [files["spec"], "--init", files["state"]],
        "onnx": [files["onnx"]],
    }[kind]


KINDS = ("zoo", "checkpoint", "state dict + zoo --arch", "state dict + file.py --arch", "file.py:Name",
         "file.py:Name --init", "onnx")
PYTORCH_KINDS = KINDS[:-1]


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def coloured_fraction(path) -> float:
    """The share of a PNG that is drawn in colour (colour maps, bars), not white, grey or text."""
    px = pixels(path)
    return float(((px.max(axis=2) - px.min(axis=2)) > 20).mean())


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# ----------------------------------------------------------------------------------------- info

@pytest.mark.parametrize("kind", KINDS)
def test_info_prints_the_layer_table_of_every_kind(files, kind, capsys):
    assert main(["info", *model_args(files, kind)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["layer", "kind", "output"] and lines[-1].startswith("input 1×32×32, ")
    if kind in ("zoo", "state dict + zoo --arch"):
        assert any(line.split()[:2] == ["C1", "conv"] for line in lines) and "61,706 parameters" in out
    elif kind == "onnx":
        assert any(" pool " in line for line in lines) and any(" conv " in line for line in lines)
    else:
        # the tutorial's functional pool and flatten are layers, marked as calls
        assert any(line.startswith("F.max_pool2d (f)") and " pool " in line for line in lines), out
        assert any(line.startswith("F.flatten (f)") for line in lines)
        assert f"{4 * 9 + 4 + 8 * 36 + 8 + 8 * 10 + 10:,} parameters" in lines[-1]


# ----------------------------------------------------------------------------------------- render

@pytest.mark.parametrize("kind", ["zoo", "checkpoint", "state dict + zoo --arch", "file.py:Name --init", "onnx"])
def test_render_draws_every_view_of_every_kind(files, kind, tmp_path, capsys):
    extra = [] if kind in ("zoo", "checkpoint") else DATA     # a zoo name: the sample data; ours: its own
    out = tmp_path / "figs"
    assert main(["render", *model_args(files, kind), *extra, "--out", str(out)]) == 0
    assert {p.stem for p in out.glob("*.png")} == VIEWS
    assert coloured_fraction(out / "pooling.png") > 0.1          # the pooling view is drawn, functional or not
    assert coloured_fraction(out / "feature_maps.png") > 0.1
    err = capsys.readouterr().err
    if kind == "onnx":
        assert "no backward pass" in err and coloured_fraction(out / "gradients.png") < 0.02
    else:
        # No training ran: one backward pass on a batch of the data draws the gradient bars.
        assert coloured_fraction(out / "gradients.png") > 0.05, kind


def test_render_of_a_model_without_pooling_leaves_the_pooling_view_empty(files, tmp_path):
    """The control for the check above: the measure tells a drawn view from an empty one."""
    out = tmp_path / "figs"
    assert main(["render", files["nopool"], *DATA, "--out", str(out)]) == 0
    assert coloured_fraction(out / "pooling.png") < 0.02 and coloured_fraction(out / "gradients.png") > 0.05


def test_render_without_data_says_why_the_gradient_view_is_empty(files, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["render", files["spec"], "--out", str(out)]) == 0
    assert "give --dataset" in capsys.readouterr().err
    assert coloured_fraction(out / "gradients.png") < 0.02


def test_render_filters_are_the_weights_given(files, tmp_path):
    """--init WEIGHTS and WEIGHTS --arch MODEL are one model: the same filters; fresh weights are others."""
    a, b, c = (tmp_path / n for n in "abc")
    assert main(["render", files["spec"], "--init", files["state"], *DATA, "--out", str(a)]) == 0
    assert main(["render", files["state"], "--arch", files["spec"], *DATA, "--out", str(b)]) == 0
    assert main(["render", files["spec"], *DATA, "--out", str(c)]) == 0
    assert np.array_equal(pixels(a / "filters.png"), pixels(b / "filters.png"))
    assert not np.array_equal(pixels(a / "filters.png"), pixels(c / "filters.png"))


# ----------------------------------------------------------------------------------------- train

def trained_state(path, spec=None) -> dict:
    return load_model(path, model_spec=spec).model.state_dict()


@pytest.mark.parametrize("kind", PYTORCH_KINDS)
def test_train_trains_every_pytorch_kind_and_writes_our_checkpoint(files, kind, tmp_path, capsys):
    out = tmp_path / "trained.pt"
    args = model_args(files, kind)
    assert main(["train", *args, *DATA, "--epochs", "1", "--batch-size", "32", "--quiet", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"saved {out}"
    user = kind not in ("zoo", "state dict + zoo --arch")
    bundle = load_model(out, model_spec=files["spec"] if user else None)
    assert bundle.meta["dataset"] == "digits" and bundle.meta["epochs"] == 1 and bundle.meta["training_state"]
    assert bundle.arch == (files["spec"] if user else "lenet5")
    assert bundle.class_names == tuple(str(i) for i in range(10)) and bundle.std[0] > 0


def test_train_takes_the_normalisation_and_class_names_the_weights_file_lacks(files, tmp_path):
    out, names = tmp_path / "trained.pt", tmp_path / "classes.txt"
    names.write_text("".join(f"digit {i}\n" for i in range(10)))
    assert main(["train", files["lenet_state"], "--arch", "lenet5", *DATA, "--epochs", "1", "--quiet",
                 "--mean", "0.5", "--std", "0.25", "--class-names", str(names), "--out", str(out)]) == 0
    bundle = load_model(out)
    assert bundle.mean == (0.5,) and bundle.std == (0.25,)
    assert bundle.class_names == tuple(f"digit {i}" for i in range(10))


@pytest.mark.parametrize("how", ["--init", "--arch"])
def test_train_starts_from_the_weights_given(files, how, tmp_path):
    """At a learning rate of 1e-9 one epoch leaves the weights where they started: at the file's."""
    out = tmp_path / "trained.pt"
    model = [files["spec"], "--init", files["state"]] if how == "--init" else [files["state"], "--arch", files["spec"]]
    assert main(["train", *model, *DATA, "--epochs", "1", "--lr", "1e-9", "--quiet", "--out", str(out)]) == 0
    start = files["tiny"].state_dict()
    got = trained_state(out, files["spec"])
    assert all(torch.allclose(got[k], start[k], atol=1e-6) for k in start)


def test_train_takes_the_model_file_as_arch_alone_like_a_zoo_name(files, tmp_path):
    """`train --arch lenet5` has always named the model itself; `--arch file.py:Name` alone does too."""
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    assert main(["train", "--arch", files["spec"], *DATA, "--epochs", "1", "--quiet", "--out", str(a)]) == 0
    assert main(["train", files["spec"], *DATA, "--epochs", "1", "--quiet", "--out", str(b)]) == 0
    sa, sb = trained_state(a, files["spec"]), trained_state(b, files["spec"])
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_train_of_a_model_file_is_seeded_like_a_zoo_model(files, tmp_path):
    a, b, c = (tmp_path / f"{n}.pt" for n in "abc")
    for path, seed in ((a, "1"), (b, "1"), (c, "2")):
        assert main(["train", files["spec"], *DATA, "--epochs", "1", "--seed", seed, "--quiet", "--out", str(path)]) == 0
    sa, sb, sc = (trained_state(p, files["spec"]) for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and not torch.equal(sa["conv1.weight"], sc["conv1.weight"])


# ----------------------------------------------------------------------------------------- health

@pytest.mark.parametrize("kind", ["checkpoint", "state dict + file.py --arch", "file.py:Name --init",
                                  "state dict + zoo --arch"])
def test_health_reports_on_every_pytorch_kind(files, kind, capsys):
    data = [] if kind == "checkpoint" else ["--dataset", "digits"]   # our checkpoint names its data
    assert main(["health", *model_args(files, kind), *data, "--json"]) == 0
    import json
    rows = {r["layer"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    if kind == "state dict + zoo --arch":
        assert list(rows)[:2] == ["C1", "C1_act"]
    else:
        assert list(rows) == ["conv1", "F.relu", "conv2", "F.relu_1", "fc"]
        assert rows["conv1"]["samples"] == 256 and rows["conv1"]["grad_norm"] > 0


# ----------------------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("argv, fragment", [
    (["info", "{checkpoint}"], "name its model with --arch"),
    (["info", "{state}"], "--arch NAME or --arch path/to/file.py:Name"),
    (["info", "lenet5", "--arch", "lenet5"], "--arch names the model of a weights file, but lenet5 is a zoo"),
    (["info", "{spec}", "--arch", "lenet5"], "give its weights with --init FILE"),
    (["info", "{state}", "--arch", "lenet6"], "--arch lenet6: not a zoo architecture"),
    (["info", "{dir}/missing.py:Net"], "no such model file"),
    (["info", "{onnx}", "--init", "{state}"], "--init gives the weights of a zoo name or path/to/file.py:Name"),
    (["info", "{spec}", "--init", "{dir}/nothing.pt"], "nothing.pt: no such weights file"),
    (["render", "lenet5", "--step", "3", "--out", "{dir}/x"], "--step picks a recorded step of a run file"),
    (["train", "{onnx}", "--out", "{dir}/x.pt"], "training an ONNX model is not offered"),
    (["health", "{onnx}"], "ONNX models are opened for inspection only"),
    (["train", "{spec}", "--activation", "tanh", "--out", "{dir}/x.pt"], "--activation: model options build a zoo"),
    (["train", "{state}", "--out", "{dir}/x.pt"], "name the model of these weights with --arch"),
    (["train", "{spec}", "--resume", "{checkpoint}", "--out", "{dir}/x.pt"], "give no MODEL or --init"),
    (["train", "{state}", "--arch", "lenet5", "--out", "{dir}/x.pt"], "lenet5"),
    (["info", "{onnx}", "--mean", "0.1,0.2", "--std", "1"], "2 mean values for a model of 1 input channel"),
    (["info", "{onnx}", "--std", "0"], "every std must be above 0"),
    (["info", "{onnx}", "--mean", "x"], "--mean x: 'x' is not a number"),
    (["info", "{onnx}", "--class-names", "{dir}/none.txt"], "none.txt: could not be read"),
    (["info", "{onnx}", "--class-names", "{dir}/tiny.py"], "class names for a model with 10 outputs"),
])
def test_every_model_argument_error_is_one_line_and_exit_2(files, argv, fragment, capsys):
    argv = [a.format(**files) for a in argv]
    assert main(argv) == 2
    err = one_error_line(capsys)
    assert err.startswith(f"cnn-visualizer {argv[0]}: error: ") and fragment in err, err
