"""Resident memory over 5,000 instrumented LeNet-5 steps.

Target (issue 2 §9): growth < 20 MB after warm-up (bounded buffers, no retained graphs).
Snapshots are requested at 10/s with every layer and the first conv's filters captured,
and consumed at once, as a fast GUI would.

    ./dev bench memory_growth [--steps 5000]
"""
from __future__ import annotations

import argparse
import gc

import psutil
import torch

from visualizer.core.assemble import data_for, new_model_bundle
from visualizer.core.config import TrainConfig
from visualizer.core.datasets import load_dataset
from visualizer.core.snapshot import CaptureRequest, TrainingSnapshot
from visualizer.core.training import Trainer, TrainingControl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--hz", type=float, default=10.0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    proc = psutil.Process()
    ds = load_dataset("digits")
    bundle = new_model_bundle("lenet5", ds, seed=0)
    data = data_for(bundle, ds)
    control = TrainingControl()
    trainer = Trainer(bundle, data, TrainConfig(epochs=10_000, snapshot_hz=args.hz), control)
    control.request_capture(CaptureRequest(layers=("*",), filter_layers=("C1",)))
    warm = min(500, args.steps // 10)
    state = {"base": None, "snaps": 0}
    samples = []

    def on_step(step, loss, acc):
        # Called after every step (snapshots are sparse), so the samples land on exact steps.
        if step == warm:
            gc.collect()
            state["base"] = proc.memory_info().rss
        elif state["base"] is not None and step % 500 == 0:
            samples.append((step, (proc.memory_info().rss - state["base"]) / 2**20))
    trainer.on_step = on_step
    for e in trainer.run():
        if isinstance(e, TrainingSnapshot):
            state["snaps"] += 1
            control.snapshot_consumed()
        if trainer.step >= args.steps:
            break
    base, snaps = state["base"], state["snaps"]
    gc.collect()
    growth = (proc.memory_info().rss - base) / 2**20
    for step, mb in samples:
        print(f"step {step:>6}: {mb:+7.1f} MB")
    print(f"{args.steps} steps, {snaps} snapshots: RSS growth after warm-up {growth:+.1f} MB (target < 20 MB)")


if __name__ == "__main__":
    main()
