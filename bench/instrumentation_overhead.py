"""Cost of live instrumentation: snapshots per second, and their cost as a share of training time.

Targets (issue 12): LeNet-5 at 32x32, batch 64: >= 15 snapshots/s while the snapshot code
costs <= 1% of training time; a small VGG-11 (width 0.125) >= 8/s; ResNet-18 at 32x32 >= 3/s,
same 1% budget. The trainer runs with the app's defaults (TrainConfig: snapshot_hz, and the
pacer's instrumentation budget), and an instant consumer (the worst case for overhead).

The snapshot code (Trainer._make_snapshot and the gradient statistics of the measured step)
is timed from inside; besides, headless and instrumented runs are timed side by side,
interleaved, best of the rounds: these machines are shared and noisy.

    ./dev bench instrumentation_overhead [--steps 300] [--rounds 3] [--models lenet5,vgg11,resnet18]

The trainer hands a snapshot's records over unbuilt (core/packed_pass.py); the consumer
builds them from a pickled copy, as the window's process does, and that time is reported
apart (build_ms). As in the app, snapshots are also recorded to a run file, whose
writer's encoding (on its thread, encode_ms, for the snapshots it records: at most one a second) the pacer
counts against the same budget (``--no-run-file``: the trainer alone).

The floor: what the least a live snapshot needs costs on this machine, with no capture at all,
timed right after a training step as a snapshot is (a separate run, on a twin of the model with
no hooks): the model's own forward pass of one image in eval mode under ``no_grad``, with the
plain one-image kernels the probe uses (forward_floor_ms), and one fused norm over the weight
gradients, the least the gradient view reads (norms_floor_ms). ``floor_per_s`` is how many
snapshots a second the budget would allow if a snapshot cost only those two.

Ends with one line per model:
    RESULT <model> snapshot_ms=<median> snaps_per_s=<rate> overhead_pct=<pct> wall_ratio=<instr/headless> build_ms=<median> encode_ms=<median> forward_floor_ms=<median> norms_floor_ms=<median> floor_per_s=<rate>
"""
from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import tempfile
import time

import torch

from visualizer.core.assemble import data_for, new_model_bundle
from visualizer.core.config import TrainConfig
from visualizer.core.datasets import load_dataset
from visualizer.core.engine.run_keeper import RunKeeper
from visualizer.core.introspect import eval_mode, one_sample_kernels
from visualizer.core.snapshot import CaptureRequest, TrainingSnapshot
from visualizer.core.training import Trainer, TrainingControl

CASES = {"lenet5": ("digits", None), "vgg11": ("shapes", 0.125), "resnet18": ("shapes", None)}


def run(arch: str, ds, steps: int, instrumented: bool, width: float | None,
        builds: list[float] | None = None, encodes: list[float] | None = None,
        run_file: bool = True) -> tuple[float, list[float], int]:
    """(seconds for ``steps`` steps, seconds of each snapshot's code, snapshots made). ``builds`` gets
    the seconds the consumer took to build each snapshot's records (in the app: the window's process),
    ``encodes`` the run writer's encoding of each (``run_file``: every snapshot is recorded to a run
    file as the app's own runs are, and the pacer counts that encoding)."""
    opts = {} if width is None else {"width": width}
    bundle = new_model_bundle(arch, ds, seed=0, **opts)
    data = data_for(bundle, ds, val_fraction=0.0)
    control = TrainingControl()
    config = TrainConfig(epochs=1000, batch_size=64) if instrumented else TrainConfig(epochs=1000, batch_size=64,
                                                                                      snapshot_hz=0)
    trainer = Trainer(bundle, data, config, control)
    keeper = None
    if instrumented and run_file:    # the app's own run file, as its engine keeps it
        folder = tempfile.mkdtemp(prefix="instrumentation-")
        keeper = RunKeeper(trainer, checkpoint=lambda: None, meta={"source": "bench"}, emit=lambda *a: None,
                           autosave_dir=None, runs_dir=None, run_path=os.path.join(folder, "bench.cnnviz"))
    convs = tuple(layer.name for layer in trainer.inspector.info.layers if layer.kind == "conv")
    # What the window asks for: every layer (a model this size), the selected conv's filters.
    control.request_capture(CaptureRequest(layers=("*",), filter_layers=convs[:1], max_channels=64))
    costs: list[float] = []
    measured = [0.0]
    make, stats = trainer._make_snapshot, trainer.inspector.gradient_stats

    def timed_make(*a, **k):
        t = time.perf_counter()
        try:
            return make(*a, **k)
        finally:
            costs.append(time.perf_counter() - t + measured[0])
            measured[0] = 0.0

    def timed_stats(*a, **k):
        t = time.perf_counter()
        try:
            return stats(*a, **k)
        finally:
            measured[0] += time.perf_counter() - t

    trainer._make_snapshot, trainer.inspector.gradient_stats = timed_make, timed_stats
    it = trainer.run()
    while trainer.step < 20:          # warm-up
        event = next(it)
        if isinstance(event, TrainingSnapshot):
            if keeper is not None:
                keeper.event(event)
            control.snapshot_consumed()
    costs.clear()
    snaps = 0
    start_step, t0 = trainer.step, time.perf_counter()
    while trainer.step < start_step + steps:
        event = next(it)
        if isinstance(event, TrainingSnapshot):
            snaps += 1
            # What the window's process receives (the app's sender thread pickles it), then the run
            # writer's copy (its thread builds and encodes that one); then the window builds its
            # records. Here all in this process, so the wall ratio includes them.
            sent = pickle.dumps(event)
            if keeper is not None:
                keeper.event(event)
            received = pickle.loads(sent)
            if received.probe is not None:
                t = time.thread_time()
                received.probe.built()
                if builds is not None:
                    builds.append(time.thread_time() - t)
            control.snapshot_consumed()
    wall = time.perf_counter() - t0
    control.stop()
    list(it)
    trainer.close()
    if keeper is not None:
        if encodes is not None:
            encodes.append(keeper.writer.encode_cost)
        keeper.end("completed")
        shutil.rmtree(folder, ignore_errors=True)
    return wall, costs, snaps


def floor(arch: str, ds, steps: int, width: float | None) -> tuple[float, float]:
    """Median seconds of (one image's bare forward, one fused norm of the weight gradients), each
    timed right after a training step on a hook-free twin of the model (see the module docstring)."""
    opts = {} if width is None else {"width": width}
    bundle = new_model_bundle(arch, ds, seed=0, **opts)
    twin = new_model_bundle(arch, ds, seed=0, **opts).model
    data = data_for(bundle, ds, val_fraction=0.0)
    trainer = Trainer(bundle, data, TrainConfig(epochs=1000, batch_size=64, snapshot_hz=0), TrainingControl())
    twin.load_state_dict(bundle.model.state_dict())
    x = torch.zeros((1, *bundle.input_shape))
    params = [p for p in bundle.model.parameters() if p.requires_grad]
    forwards: list[float] = []
    norms: list[float] = []

    def after_step(step: int, *_):
        if step <= 10:             # warm-up
            return
        if step % 2:
            with eval_mode(twin), torch.no_grad(), one_sample_kernels(x.device):
                t = time.perf_counter()
                twin(x)
                forwards.append(time.perf_counter() - t)
        else:
            grads = [p.grad for p in params if p.grad is not None]
            t = time.perf_counter()
            torch.stack(torch._foreach_norm(grads)).tolist()
            norms.append(time.perf_counter() - t)

    trainer.on_step = after_step
    it = trainer.run()
    while trainer.step < 10 + steps:
        next(it)
    trainer.control.stop()
    list(it)
    trainer.close()
    return statistics.median(forwards), statistics.median(norms)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default=",".join(CASES))
    ap.add_argument("--no-run-file", action="store_true", help="the trainer alone: no run file recorded")
    args = ap.parse_args()
    torch.set_num_threads(2)
    results, floors = [], []
    print(f"{'model':<10} {'headless s':>10} {'instr. s':>9} {'wall ratio':>10} {'snapshot ms':>11} "
          f"{'overhead':>9} {'snaps/s':>8} {'build ms':>9} {'encode ms':>10}")
    for arch in args.models.split(","):
        dsname, width = CASES[arch]
        ds = load_dataset(dsname, seed=0)
        steps = args.steps if arch != "resnet18" else max(20, args.steps // 10)
        heads, insts, all_costs, overheads, rates, builds, encodes = [], [], [], [], [], [], []
        for _ in range(args.rounds):
            h, _, _ = run(arch, ds, steps, False, width)
            w, costs, n = run(arch, ds, steps, True, width, builds, encodes, run_file=not args.no_run_file)
            heads.append(h)
            insts.append(w)
            all_costs += costs
            overheads.append(sum(costs) / w)
            rates.append(n / w)
        h, w = min(heads), min(insts)
        ms = 1000 * statistics.median(all_costs) if all_costs else float("nan")
        pct = 100 * statistics.median(overheads)
        rate = statistics.median(rates)
        build = 1000 * statistics.median(builds) if builds else float("nan")
        encode = 1000 * statistics.median(encodes) if encodes else float("nan")
        fwd, nrm = floor(arch, ds, steps, width)
        floor_rate = TrainConfig().instrumentation_budget / (fwd + nrm)
        floors.append(f"{arch:<10} forward {1000 * fwd:.2f} ms + gradient norms {1000 * nrm:.2f} ms: "
                      f"at most {floor_rate:.1f} snapshots/s within the budget")
        print(f"{arch:<10} {h:>10.3f} {w:>9.3f} {w / h:>10.3f} {ms:>11.2f} {pct:>8.2f}% {rate:>8.1f} {build:>9.2f} "
              f"{encode:>10.2f}")
        results.append(f"RESULT {arch} snapshot_ms={ms:.3f} snaps_per_s={rate:.1f} overhead_pct={pct:.2f} "
                       f"wall_ratio={w / h:.3f} build_ms={build:.3f} encode_ms={encode:.3f} "
                       f"forward_floor_ms={1000 * fwd:.3f} norms_floor_ms={1000 * nrm:.3f} "
                       f"floor_per_s={floor_rate:.1f}")
    print("wall ratio: instrumented / headless time for the same steps (best of rounds); overhead: time inside "
          "the snapshot and gradient-statistics code / instrumented wall time (median of rounds); build: the "
          "window's building of the records the trainer hands over unbuilt (median); encode: the run writer's CPU time "
          "a snapshot, counted by the pacer (median)")
    print("floor: a snapshot with no capture at all, right after a training step (see the docstring):")
    for line in floors:
        print(line)
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
