"""`cnn-visualizer health`: the table and the JSON a user reads, on checkpoints broken on purpose."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from visualizer.cli import main
from visualizer.core.checkpoint import load_model, save_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """LeNet-5 trained a little on the built-in digits by the `train` command itself."""
    out = tmp_path_factory.mktemp("health") / "lenet.pt"
    assert main(["train", "--arch", "lenet5", "--dataset", "digits", "--epochs", "3", "--quiet",
                 "--out", str(out)]) == 0
    return out


def json_rows(text: str) -> dict[str, dict]:
    rows = [json.loads(line) for line in text.splitlines()]
    return {r["layer"]: r for r in rows}


def test_a_healthy_checkpoint_prints_a_table_without_flags(trained, capsys):
    assert main(["health", str(trained)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"health of {trained} on digits"
    assert lines[1].split()[:4] == ["layer", "kind", "dead", "saturated"]
    assert "> 50%" in lines[2] and "< 0.001" in lines[2] and "> 0.1 | < 1e-06" in lines[2]
    for name in ("C1", "C1_act", "C3", "C3_act", "C5", "C5_act", "F6", "F6_act", "output"):
        row = next(l for l in lines if l.split()[:1] == [name])
        assert row.rstrip().endswith("-"), row          # no flag
    assert "256 samples; ‖ΔW‖/‖W‖ from one SGD step (lr 0.01, momentum 0.9)" in out
    assert "no flags: all 9 layers are within their thresholds" in out


def test_json_has_one_object_per_layer_with_figures_thresholds_and_flags(trained, capsys):
    assert main(["health", str(trained), "--json"]) == 0
    rows = json_rows(capsys.readouterr().out)
    assert list(rows) == ["C1", "C1_act", "C3", "C3_act", "C5", "C5_act", "F6", "F6_act", "output"]
    c1, act = rows["C1"], rows["C1_act"]
    assert c1["kind"] == "conv" and c1["trainable"] is True and c1["samples"] == 256
    assert c1["grad_norm"] > 0 and c1["dead_fraction"] is None
    assert c1["thresholds"]["grad_relative"] == [{"flag": "vanishing", "below": 0.001}]
    assert c1["thresholds"]["update_ratio"] == [{"flag": "exploding", "above": 0.1},
                                                {"flag": "not learning", "below": 1e-06}]
    assert act["function"] == "relu" and act["thresholds"]["dead_fraction"] == [{"flag": "dead", "above": 0.5}]
    assert all(r["flags"] == [] and r["advice"] == [] for r in rows.values())


def test_a_checkpoint_with_a_far_negative_relu_bias_is_flagged_dead(trained, tmp_path, capsys):
    bundle = load_model(trained)
    with torch.no_grad():
        bundle.model.C3.bias.fill_(-100.0)
    broken = tmp_path / "broken.pt"
    save_checkpoint(broken, bundle)
    assert main(["health", str(broken), "--json"]) == 0
    rows = json_rows(capsys.readouterr().out)
    assert rows["C3_act"]["flags"] == ["dead"] and rows["C3_act"]["dead_fraction"] == 1.0
    assert rows["C1"]["flags"][0] == "vanishing" and rows["C1"]["grad_norm"] == 0
    assert main(["health", str(broken)]) == 0
    out = capsys.readouterr().out
    assert "  C3_act: dead: its units never fire on this batch" in out
    assert "  C1: vanishing: no gradient reaches this layer at all" in out


def test_a_learning_rate_far_too_high_is_flagged_exploding(trained, capsys):
    assert main(["health", str(trained), "--lr", "5"]) == 0
    out = capsys.readouterr().out
    assert "one SGD step (lr 5, momentum 0.9)" in out
    assert "5 of 9 layers flagged" in out
    assert "  output: exploding: lower the learning rate or clip gradients" in out


def test_a_users_model_file_with_a_frozen_layer(tmp_path, capsys):
    f = tmp_path / "net.py"
    f.write_text(textwrap.dedent("""
        import torch.nn as nn, torch.nn.functional as F
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Conv2d(1, 8, 3, padding=1)
                self.frozen = nn.Conv2d(8, 8, 3, padding=1)
                self.frozen.requires_grad_(False)
                self.fc = nn.Linear(8, 10)
            def forward(self, x):
                x = F.relu(self.stem(x))
                x = F.relu(self.frozen(x))
                return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
    """))
    assert main(["health", f"{f}:Net", "--dataset", "digits", "--input-size", "16", "--in-channels", "1"]) == 0
    out = capsys.readouterr().out
    frozen = next(l for l in out.splitlines() if l.startswith("frozen "))
    assert "conv (frozen)" in frozen and frozen.rstrip().endswith("not learning")
    assert "frozen: not learning: its weights are frozen (requires_grad=False)" in out
    assert "F.relu" in out


@pytest.mark.parametrize("argv, message", [
    (["health", "no_such_model"], "no such file, and not a zoo architecture"),
    (["health", "lenet5", "--samples", "100"], "needs at least 256 samples"),
    (["health", "lenet5", "--dataset", "digits", "--samples", "5000"], "has only 1797"),
    (["health", "lenet5", "--lr", "0"], "learning rate must be a positive number"),
])
def test_errors_are_one_line_and_exit_non_zero(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnn-visualizer health: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_a_model_for_other_data_says_so(capsys):
    assert main(["health", str(REPO / "models" / "simplecnn_shapes.pt"), "--dataset", "digits"]) == 2
    err = capsys.readouterr().err
    assert "labels up to 9 but the model has 6 outputs" in err and len(err.strip().splitlines()) == 1
