"""Cost of live instrumentation (snapshots at 10/s) relative to plain training.

Target (issue 2 §9): <= 2% of training time for LeNet-5 and a small VGG at 32x32, batch 64.
The machines are noisy (+-15% between identical runs), so besides the side-by-side wall
time of headless vs instrumented runs (interleaved, best of several), the instrumentation
code itself is timed and reported as a fraction of the step time.

    ./dev bench instrumentation_overhead [--steps 300] [--rounds 3]
"""
from __future__ import annotations

import argparse
import time

import torch

from visualizer.core.assemble import data_for, new_model_bundle
from visualizer.core.config import TrainConfig
from visualizer.core.datasets import load_dataset
from visualizer.core.snapshot import CaptureRequest, TrainingSnapshot
from visualizer.core.training import Trainer, TrainingControl


def run(arch: str, ds, steps: int, hz: float, width: float | None) -> tuple[float, float, int]:
    """(seconds for `steps` steps, seconds inside instrumentation, snapshots made)."""
    opts = {} if width is None else {"width": width}
    bundle = new_model_bundle(arch, ds, seed=0, **opts)
    data = data_for(bundle, ds, val_fraction=0.0)
    control = TrainingControl()
    trainer = Trainer(bundle, data, TrainConfig(epochs=1000, batch_size=64, snapshot_hz=hz), control)
    convs = tuple(l.name for l in trainer.inspector.info.layers if l.kind == "conv")
    control.request_capture(CaptureRequest(layers=("*",), filter_layers=convs[:1], max_channels=64))
    spent = 0.0
    for name in ("_make_snapshot",):
        orig = getattr(trainer, name)

        def timed(*a, _orig=orig, **k):
            nonlocal spent
            t = time.perf_counter()
            try:
                return _orig(*a, **k)
            finally:
                spent += time.perf_counter() - t
        setattr(trainer, name, timed)
    orig_stats = trainer.inspector.gradient_stats

    def timed_stats(*a, **k):
        nonlocal spent
        t = time.perf_counter()
        try:
            return orig_stats(*a, **k)
        finally:
            spent += time.perf_counter() - t
    trainer.inspector.gradient_stats = timed_stats
    snaps = 0
    it = trainer.run()
    # warm-up
    while trainer.step < 20:
        e = next(it)
        if isinstance(e, TrainingSnapshot):
            control.snapshot_consumed()
    spent, snaps = 0.0, 0
    start_step, t0 = trainer.step, time.perf_counter()
    while trainer.step < start_step + steps:
        e = next(it)
        if isinstance(e, TrainingSnapshot):
            snaps += 1
            control.snapshot_consumed()   # an instant GUI: the worst case for overhead
    wall = time.perf_counter() - t0
    control.stop()
    list(it)
    trainer.close()
    return wall, spent, snaps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    cases = [("lenet5", "digits", None), ("vgg11", "shapes", 0.125)]
    print(f"{'model':<10} {'headless s':>10} {'instr. s':>9} {'wall ratio':>10} {'instr. code':>11} {'snaps/s':>8}")
    for arch, dsname, width in cases:
        ds = load_dataset(dsname, seed=0)
        heads, insts, fracs, rates = [], [], [], []
        for _ in range(args.rounds):
            h, _, _ = run(arch, ds, args.steps, 0.0, width)
            w, spent, n = run(arch, ds, args.steps, 10.0, width)
            heads.append(h)
            insts.append(w)
            fracs.append(spent / w)
            rates.append(n / w)
        h, w = min(heads), min(insts)
        frac = sorted(fracs)[len(fracs) // 2]
        print(f"{arch:<10} {h:>10.3f} {w:>9.3f} {w / h:>10.3f} {frac:>10.2%} {sorted(rates)[len(rates)//2]:>8.1f}")
    print("wall ratio: instrumented / headless time for the same steps (best of rounds);"
          " instr. code: time inside snapshot and gradient-statistics code / instrumented wall time (median)")


if __name__ == "__main__":
    main()
