"""`train --resume` continues the saved run: its settings come from the checkpoint, a flag that
contradicts them is refused with both values, and a data set with other classes is refused."""
from __future__ import annotations

import pytest
import torch

from visualizer.cli import main
from visualizer.core.checkpoint import load_model

FIRST = ["--dataset", "digits", "--limit", "200", "--seed", "3", "--optimizer", "adam", "--lr", "0.005",
         "--schedule", "step", "--batch-size", "16", "--val-fraction", "0.2", "--activation", "tanh",
         "--width", "0.5", "--augment", "--quiet"]


@pytest.fixture(scope="module")
def run_1(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "run.pt"
    assert main(["train", *FIRST, "--epochs", "1", "--out", str(out)]) == 0
    return out


def test_resume_without_flags_continues_the_run_bit_identically(run_1, tmp_path):
    resumed = tmp_path / "resumed.pt"
    assert main(["train", "--resume", str(run_1), "--epochs", "2", "--quiet", "--out", str(resumed)]) == 0
    straight = tmp_path / "straight.pt"
    assert main(["train", *FIRST, "--epochs", "2", "--out", str(straight)]) == 0
    a, b = load_model(resumed), load_model(straight)
    config = a.meta["config"]
    assert (config["optimizer"], config["lr"], config["schedule"], config["batch_size"], config["seed"]) == \
        ("adam", 0.005, "step", 16, 3)
    assert a.arch_options["activation"] == "tanh" and a.arch_options["width"] == 0.5
    assert a.meta["data"] == {"val_fraction": 0.2, "limit": 200,
                              "augment": {"rotation": 10.0, "translation": 0.1, "scale": 0.1, "hflip": False}}
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_flags_that_agree_with_the_checkpoint_are_accepted(run_1, tmp_path):
    assert main(["train", "--resume", str(run_1), "--optimizer", "adam", "--lr", "0.005", "--seed", "3",
                 "--epochs", "2", "--quiet", "--out", str(tmp_path / "again.pt")]) == 0


@pytest.mark.parametrize("flag, value, theirs", [
    ("--optimizer", "sgd", "adam"),
    ("--lr", "0.1", "0.005"),
    ("--schedule", "cosine", "step"),
    ("--batch-size", "64", "16"),
    ("--seed", "0", "3"),
    ("--arch", "vgg11", "lenet5"),
    ("--activation", "relu", "tanh"),
    ("--width", "1.0", "0.5"),
    ("--val-fraction", "0.1", "0.2"),
    ("--limit", "100", "200"),
])
def test_a_conflicting_flag_is_refused_naming_both_values(run_1, tmp_path, capsys, flag, value, theirs):
    out = tmp_path / "x.pt"
    capsys.readouterr()
    rc = main(["train", "--resume", str(run_1), flag, value, "--epochs", "2", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 2 and not out.exists() and "epoch" not in captured.out
    (line,) = captured.err.strip().splitlines()
    assert f"{flag} {value} conflicts with the checkpoint's {theirs}" in line and str(run_1) in line


def test_resuming_on_a_data_set_with_other_classes_is_refused(run_1, tmp_path, capsys):
    capsys.readouterr()
    rc = main(["train", "--resume", str(run_1), "--dataset", "shapes", "--epochs", "2", "--quiet",
               "--out", str(tmp_path / "x.pt")])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert "the data set shapes has 6 classes (circle" in line and "trained on 10 classes (0, 1, 2" in line
