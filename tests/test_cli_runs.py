"""Run files on the command line: a plain training loop records with ``visualizer.record.Recorder``;
``info`` prints what the run holds and ``render --step N`` draws the snapshot recorded at that step.
A run file that is empty, truncated or not a run at all is refused with one line."""
from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from visualizer.cli import main
from visualizer.core.record.run_reader import RunReader
from visualizer.record import Recorder

PROBE_VIEWS = ("feature_maps", "overview", "filters", "pooling", "probabilities")   # drawn from the probe pass alone
TRAIN_BLUE = np.array([0x1E, 0x88, 0xE5])     # the loss curve's colour (CurvesView.TRAIN_COLOUR)


class Net(nn.Module):
    """The PyTorch tutorial's net, at 16x16."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.conv2 = nn.Conv2d(6, 12, 3)
        self.fc1 = nn.Linear(12 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


STEPS = 30


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    """A plain loop that records every step it can (hz high, no budget), 3 epochs, one note."""
    torch.manual_seed(0)
    x = torch.rand(240, 1, 16, 16)
    y = ((x[:, 0, :8].mean((1, 2)) > 0.5).long() + 2 * (x[:, 0, :, :8].mean((1, 2)) > 0.5).long())
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)   # fast: the filters visibly move
    path = tmp_path_factory.mktemp("run") / "exp1.cnnviz"
    with Recorder(model, path, probe=(x[:1], y[:1]), optimizer=opt, hz=1000, budget=1.0) as rec:
        for step in range(STEPS):
            i = torch.arange(step * 24, step * 24 + 24) % len(x)
            opt.zero_grad()
            loss = F.cross_entropy(model(x[i]), y[i])
            loss.backward()
            rec.step(step, loss=loss, epoch=step // 10)
            opt.step()
            if step % 10 == 9:
                rec.epoch_end(step // 10, step, train_loss=float(loss.detach()), val_accuracy=0.25 + step / 100)
            if step == 15:
                rec.event("note", step, "halfway")
    with RunReader(path) as r:
        assert len(r.snapshot_steps()) >= 6
    return path


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def snapshot_steps(path) -> list[int]:
    with RunReader(path) as r:
        return [int(s) for s in r.snapshot_steps()]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_info_prints_the_runs_model_steps_snapshots_epochs_events_and_layers(run_file, capsys):
    assert main(["info", str(run_file)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"{run_file}: a run recorded by recorder from Net, finished"
    # the layer table comes from the ModelInfo stored in the run, functional layers included
    assert any(line.startswith("F.max_pool2d (f)") and "6×7×7" in line for line in lines), out
    assert any(line.startswith("F.flatten (f)") and " 48 " in line for line in lines)
    assert f"steps: {STEPS} (step 0 to {STEPS - 1}), last loss " in out
    steps = snapshot_steps(run_file)
    assert f"snapshots: {len(steps)} at steps {steps[0]} to {steps[-1]}" in lines
    assert "epochs: 3" in lines and "  epoch 3 at step 29: train loss" in out and "validation accuracy 54.0%" in out
    assert "events: 1" in lines and "  note at step 15: halfway" in lines
    assert f"layers: 10 in the model; the snapshot at step {steps[-1]} holds the maps of 10" in out


def test_render_draws_the_recorded_step(run_file, tmp_path, capsys):
    steps = snapshot_steps(run_file)
    early = steps[2]
    assert main(["render", str(run_file), "--step", str(early), "--out", str(tmp_path / "early")]) == 0
    assert main(["render", str(run_file), "--out", str(tmp_path / "last")]) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 16 and all(p.endswith(".png") for p in printed)

    # What the snapshot recorded at that step shows, drawn straight from the run file by the views.
    from visualizer.gui.render import render_views
    with RunReader(run_file) as r:
        at, snap = r.load_snapshot(early)
    assert at == early
    render_views(snap.probe, None, tmp_path / "direct")
    for view in PROBE_VIEWS:
        assert np.array_equal(pixels(tmp_path / "early" / f"{view}.png"), pixels(tmp_path / "direct" / f"{view}.png")), view
    # ... and not what the last one shows: training moved the weights in between.
    for view in ("feature_maps", "filters", "gradients", "curves"):
        assert not np.array_equal(pixels(tmp_path / "early" / f"{view}.png"),
                                  pixels(tmp_path / "last" / f"{view}.png")), view
    # The loss curve is drawn from the run's step table, up to the shown step: longer for the last one.
    blue = [int((np.abs(pixels(tmp_path / d / "curves.png") - TRAIN_BLUE).sum(axis=2) < 40).sum())
            for d in ("early", "last")]
    assert 0 < blue[0] < blue[1], blue


def test_a_step_between_snapshots_draws_the_one_before_it(run_file, tmp_path, capsys):
    steps = snapshot_steps(run_file)
    gap = next((a for a, b in zip(steps, steps[1:]) if b > a + 1), None)
    if gap is None:                       # every step recorded: ask past the last one instead
        gap, asked = steps[-1], steps[-1] + 5
    else:
        asked = gap + 1
    assert main(["render", str(run_file), "--step", str(asked), "--out", str(tmp_path / "a")]) == 0
    assert f"the last snapshot at or before step {asked} is the one at step {gap}" in capsys.readouterr().err
    assert main(["render", str(run_file), "--step", str(gap), "--out", str(tmp_path / "b")]) == 0
    assert np.array_equal(pixels(tmp_path / "a" / "filters.png"), pixels(tmp_path / "b" / "filters.png"))


def test_a_step_before_the_first_snapshot_is_refused(run_file, tmp_path, capsys):
    first = snapshot_steps(run_file)[0]
    assert main(["render", str(run_file), "--step", str(first - 1), "--out", str(tmp_path / "x")]) == 2
    err = one_error_line(capsys)
    assert f"no snapshot at or before step {first - 1}; the first is at step {first}" in err
    assert not (tmp_path / "x").exists()


def damaged(kind: str, run_file, folder):
    path = folder / f"{kind}.cnnviz"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = run_file.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "foreign sqlite":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE t (x)")
        con.commit()
        con.close()
    elif kind == "text":
        path.write_text("step,loss\n0,2.3\n")
    return path


@pytest.mark.parametrize("kind, words", [
    ("empty", "the file is empty (0 bytes)"),
    ("truncated", "truncated"),
    ("foreign sqlite", "not a cnn-visualizer run file"),
    ("text", "not a cnn-visualizer run file (not an SQLite database)"),
])
@pytest.mark.parametrize("command", ["info", "render"])
def test_damaged_or_foreign_run_files_are_refused_with_one_line(run_file, tmp_path, capsys, kind, words, command):
    path = damaged(kind, run_file, tmp_path)
    extra = ["--out", str(tmp_path / "figs")] if command == "render" else []
    assert main([command, str(path), *extra]) == 2
    err = one_error_line(capsys)
    assert err.startswith(f"cnn-visualizer {command}: error: {path}: ") and words in err, err


def test_a_run_under_another_name_is_still_read_as_a_run(run_file, tmp_path, capsys):
    other = tmp_path / "exp1.db"
    shutil.copy(run_file, other)
    assert main(["info", str(other)]) == 0
    assert "a run recorded by recorder" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["train", "health"])
def test_a_run_file_is_not_a_model_to_train_or_check(run_file, tmp_path, capsys, command):
    extra = ["--out", str(tmp_path / "x.pt")] if command == "train" else []
    assert main([command, str(run_file), *extra]) == 2
    assert "a run file records a training run; `info` and `render` read it" in one_error_line(capsys)
