"""The headless command line: train, models, info, render, and one-line errors."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from visualizer.cli import main
from visualizer.core.architectures import ARCHITECTURES
from visualizer.core.checkpoint import load_model

REPO = Path(__file__).resolve().parents[1]


def test_models_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(ARCHITECTURES)
    for name, line in zip(ARCHITECTURES, out):
        assert line.startswith(name) and len(line.split(None, 1)[1]) > 10


def test_info_zoo_name_prints_the_layer_table(capsys):
    assert main(["info", "lenet5"]) == 0
    out = capsys.readouterr().out
    for name, shape in (("C1", "6×28×28"), ("S2", "6×14×14"), ("C3", "16×10×10"), ("S4", "16×5×5"),
                        ("C5", "120×1×1"), ("F6", "84"), ("output", "10")):
        assert any(line.split()[:1] == [name] and shape in line for line in out.splitlines()), (name, out)
    assert "input 1×32×32" in out and "61,706 parameters" in out


def test_info_user_model_file_with_functional_relu(tmp_path, capsys):
    f = tmp_path / "net.py"
    f.write_text(textwrap.dedent("""
        import torch.nn as nn, torch.nn.functional as F
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3)
                self.fc = nn.Linear(8, 4)
            def forward(self, x):
                x = F.relu(self.conv(x))
                return self.fc(x.mean((2, 3)))
    """))
    assert main(["info", f"{f}:Net"]) == 0
    out = capsys.readouterr().out
    assert "conv" in out and "F.relu" in out and "(f)" in out
    assert "input 3×" in out


def test_train_then_resume_then_info(tmp_path, capsys):
    out = tmp_path / "run.pt"
    args = ["train", "--arch", "lenet5", "--dataset", "digits", "--limit", "300", "--epochs", "1",
            "--batch-size", "32", "--quiet", "--out", str(out)]
    assert main(args) == 0
    first = load_model(out)
    assert first.arch == "lenet5" and first.meta["epochs"] == 1 and first.meta["training_state"]
    assert first.class_names == tuple(str(i) for i in range(10))
    assert len(first.mean) == 1 and first.std[0] > 0
    # resume to 2 epochs equals training 2 epochs at once
    assert main(["train", "--resume", str(out), "--dataset", "digits", "--limit", "300", "--epochs", "2",
                 "--batch-size", "32", "--quiet", "--out", str(tmp_path / "resumed.pt")]) == 0
    assert main(args[:8] + ["2"] + args[9:-1] + [str(tmp_path / "straight.pt")]) == 0
    a = load_model(tmp_path / "resumed.pt").model.state_dict()
    b = load_model(tmp_path / "straight.pt").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "C1" in capsys.readouterr().out


@pytest.mark.parametrize("argv, fragment", [
    (["info", "no/such/model.pt"], "no/such/model.pt"),
    (["info", "lenet6"], "lenet6"),
    (["train", "--arch", "lenet6", "--out", "x.pt"], "lenet6"),
    (["train", "--dataset", "no/such/folder", "--out", "x.pt"], "no/such/folder"),
    (["train", "--lr", "-1", "--limit", "50", "--out", "x.pt"], "learning rate"),
])
def test_errors_are_one_line_and_nonzero(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and fragment in err
    assert len(err.splitlines()) == 1, err


def test_a_file_needing_trust_is_refused_and_points_to_the_app(tmp_path, capsys):
    from visualizer.core.architectures import build_model

    whole = tmp_path / "whole.pt"
    torch.save(build_model("lenet5", in_channels=1, num_classes=10, input_size=32), whole)
    assert main(["info", str(whole)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "never runs code from a file" in err and f"cnn-visualizer {whole}" in err


def test_bad_checkpoint_via_real_entry_point(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    r = subprocess.run([sys.executable, "-m", "visualizer", "info", str(bad)], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and str(bad) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_divergence_is_reported_not_saved(tmp_path, capsys):
    out = tmp_path / "run.pt"
    assert main(["train", "--dataset", "digits", "--limit", "200", "--lr", "1e6", "--momentum", "0",
                 "--epochs", "2", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Training stopped at step" in err and "learning rate" in err
    assert not out.exists()


def test_render_writes_every_view(tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["render", str(REPO / "models" / "lenet5_digits.pt"), "--out", str(out)]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"feature_maps.png", "filters.png", "pooling.png", "activations.png", "gradients.png",
            "probabilities.png", "overview.png", "curves.png"} <= set(pngs)
    assert all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_render_with_an_input_image(tmp_path, capsys):
    from PIL import Image
    img = tmp_path / "seven.png"
    a = Image.new("L", (40, 40))
    for i in range(8, 32):
        a.putpixel((i, 8), 255)
        a.putpixel((31 - (i - 8) // 2, i), 255)
    a.save(img)
    assert main(["render", str(REPO / "models" / "lenet5_digits.pt"), "--input", str(img),
                 "--out", str(tmp_path / "o")]) == 0
    assert "resized" in capsys.readouterr().err


def test_resume_from_a_damaged_training_state_names_the_file(tmp_path, capsys):
    out = tmp_path / "run.pt"
    assert main(["train", "--dataset", "digits", "--limit", "100", "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    ck = torch.load(out, weights_only=True)
    ck["training"]["optimizer"] = [1, 2, 3]
    torch.save(ck, out)
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--dataset", "digits", "--limit", "100", "--epochs", "2",
                 "--quiet", "--out", str(tmp_path / "b.pt")]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "training state" in err and len(err.strip().splitlines()) == 1
