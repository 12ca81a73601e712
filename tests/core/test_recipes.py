"""Lecture recipes: plain data that builds a real run, and the watch-it-learn recipe really moves the filters."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from visualizer.core.architectures import ARCHITECTURES
from visualizer.core.assemble import data_for, new_model_bundle
from visualizer.core.config import TrainConfig
from visualizer.core.datasets import BUILTIN_DATASETS, load_dataset
from visualizer.core.recipes import RECIPES, WATCH_LENET5_LEARN
from visualizer.core.snapshot import CaptureRequest
from visualizer.core.training import Trainer

REPO = Path(__file__).resolve().parents[2]


def test_every_recipe_names_real_things():
    for r in RECIPES.values():
        assert r.arch in ARCHITECTURES and r.dataset in BUILTIN_DATASETS
        c = r.train_config()
        assert isinstance(c, TrainConfig) and c.max_steps_per_sec > 0
        assert r.train_config(lr=0.5).lr == 0.5 and r.train_config().lr == r.train["lr"]   # a fresh copy each time
        with pytest.raises(TypeError):
            r.train["lr"] = 1.0                    # plain data, read-only


def test_recipe_refuses_unknown_fields_and_scales():
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        replace(WATCH_LENET5_LEARN, train={**WATCH_LENET5_LEARN.train, "learning_rate": 1.0})
    with pytest.raises(ValueError, match="filter_scale"):
        replace(WATCH_LENET5_LEARN, filter_scale="per pixel")
    with pytest.raises(ValueError, match="learning rate"):
        replace(WATCH_LENET5_LEARN, train={**WATCH_LENET5_LEARN.train, "lr": -1.0})


def test_watch_lenet5_learn_moves_loss_and_filters_in_the_first_ten_lecture_seconds():
    r = WATCH_LENET5_LEARN
    config = r.train_config(max_steps_per_sec=0.0, snapshot_hz=0.0)
    steps = int(10 * r.train["max_steps_per_sec"])            # 10 s at the recipe's speed
    ds = load_dataset(r.dataset, seed=config.seed)
    bundle = new_model_bundle(r.arch, ds, seed=config.seed, **r.options)
    data = data_for(bundle, ds, val_fraction=r.val_fraction, seed=config.seed)
    trainer = Trainer(bundle, data, config)
    losses = []
    trainer.on_step = lambda step, loss, acc: (losses.append(loss), step >= steps and trainer.control.stop())
    request = CaptureRequest(filter_layers=(r.filter_layer,))
    try:
        w0 = trainer.probe_now(request).filters[0].weight
        for _ in trainer.run():
            pass
        f = trainer.probe_now(request).filters[0]
    finally:
        trainer.close()
    assert len(losses) == steps
    assert losses[0] > 2.0 and np.mean(losses[-20:]) < 0.5            # ~2.3 -> ~0.2
    assert np.linalg.norm(f.delta) / np.linalg.norm(w0) > 0.4          # ~0.6: the filters visibly move


def test_watch_it_learn_script_writes_the_figures(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "watch_it_learn.py"), "--fast", "--times", "0,1,2",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [m["step"] for m in summary["moments"]] == [0, 20, 40]
    assert summary["train"]["optimizer"] == WATCH_LENET5_LEARN.train["optimizer"]
    assert summary["moments"][0]["change_rel"] == 0 and summary["moments"][2]["change_rel"] > 0.1
    for m in summary["moments"]:
        assert Path(m["weights_png"]).stat().st_size > 1000 and Path(m["change_png"]).stat().st_size > 1000
    assert (tmp_path / "montage.png").stat().st_size > 1000
    rows = (tmp_path / "loss.csv").read_text().splitlines()
    assert rows[0] == "step,training_time_s,loss" and len(rows) == 41
