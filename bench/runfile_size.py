"""Run-file size, write throughput and scrub latency for an hour of LeNet-5 training.

An hour at 200 steps/s and 10 snapshots/s: 720,000 step rows and 36,000 snapshots,
written through RunWriter with its default snapshot budget. The snapshots are
real TrainingSnapshots of LeNet-5 (every layer's maps, C1/C3 filters with their
change and gradient, activation statistics, gradient norms) from a pool made by
training on the built-in digits; each written snapshot takes one from the pool
with its own step, epoch, loss and history, and the writer thread encodes every
one of them (that cost is part of the throughput).

Then the scrub: load + decode the snapshot at or before random steps, through
RunReader, on the finished hour run and on a run of 10,000 snapshots that were
all kept (no thinning).

Run:  .venv/bin/python bench/runfile_size.py [--out DIR] [--pool 60] [--skip-10k]
Ends with RESULT lines.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np

from tests.core.record.lenet_snapshots import lenet_training_snapshots
from visualizer.core.record.encoding import encode_record
from visualizer.core.record.runfile import DEFAULT_SNAPSHOT_BUDGET, RunReader, RunWriter
from visualizer.core.snapshot import frozen_array

STEPS_PER_S = 200
SNAPSHOTS_PER_S = 10
SECONDS = 3600
EPOCHS = 10


def write_hour(path: str, pool, info) -> dict:
    steps = STEPS_PER_S * SECONDS
    every = STEPS_PER_S // SNAPSHOTS_PER_S
    per_epoch = steps // EPOCHS
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    wall0 = time.time()
    waited = 0.0
    with RunWriter(path, {"model_info": info, "arch": "lenet5", "dataset": "digits"},
                   max_pending_snapshots=256) as w:
        loss = 2.3
        history = []
        for step in range(steps):
            epoch = step // per_epoch
            loss = max(0.01, loss * 0.99999 + rng.normal(0, 0.01))
            acc = float(min(1.0, max(0.0, 1.0 - loss / 2.3)))
            w.append_step(step, epoch, loss, 0.05, acc, wall0 + step / STEPS_PER_S)
            history.append((step, loss, acc))
            if step % every == 0:
                base = pool[(step // every) % len(pool)]
                w.append_snapshot(step, epoch, dataclasses.replace(
                    base, step=step, epoch=epoch, batch=step % per_epoch, loss=loss, accuracy=acc,
                    history=frozen_array(np.array(history, np.float32))))
                history = []
                # The bench wants every snapshot written, so it waits for a busy writer; a training
                # loop never would (RunWriter would drop and count instead).
                while w.stats["pending_snapshots"] > 200:
                    time.sleep(0.005)
                    waited += 0.005
            if step % per_epoch == per_epoch - 1:
                w.append_epoch(epoch, step, loss, acc, loss * 1.1, acc * 0.95)
            if step % 100_000 == 0:
                print(f"  step {step:,}: {w.stats['snapshots_written']:,} snapshots written, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
    elapsed = time.perf_counter() - t0
    stats = w.stats          # after close: every last row and snapshot counted
    return {"elapsed": elapsed, "waited": waited, **stats}


def write_all_kept(path: str, records: list[bytes], count: int) -> float:
    t0 = time.perf_counter()
    with RunWriter(path, {"arch": "lenet5"}, snapshot_budget=1 << 40, max_pending_snapshots=256) as w:
        for i in range(count):
            for k in range(20):
                w.append_step(20 * i + k, 0, 1.0, 0.05, 0.5)
            w.append_snapshot(20 * i, 0, records[i % len(records)])
            while w.stats["pending_snapshots"] > 200:
                time.sleep(0.005)
    return time.perf_counter() - t0


def scrub(path: str, samples: int, seed: int = 1) -> tuple[np.ndarray, float, int]:
    t0 = time.perf_counter()
    r = RunReader(path)
    steps = r.steps()
    opened = time.perf_counter() - t0
    last = int(steps["step"][-1])
    rng = np.random.default_rng(seed)
    times = []
    for s in rng.integers(0, last + 1, samples):
        t = time.perf_counter()
        at, snap = r.load_snapshot(int(s))
        times.append(time.perf_counter() - t)
        assert at <= s and snap is not None
    n = len(r.snapshot_steps())
    r.close()
    return np.array(times) * 1e3, opened * 1e3, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="folder for the run files (default: a temporary one)")
    ap.add_argument("--pool", type=int, default=60, help="distinct real snapshots to draw from")
    ap.add_argument("--samples", type=int, default=1000, help="random scrub positions")
    ap.add_argument("--skip-10k", action="store_true", help="skip the 10,000-snapshot scrub run")
    args = ap.parse_args()
    folder = args.out or tempfile.mkdtemp(prefix="runfile-bench-")
    os.makedirs(folder, exist_ok=True)

    print(f"making {args.pool} real LeNet-5 snapshots...", flush=True)
    info, pool = lenet_training_snapshots(args.pool, steps_between=20)
    sizes = [len(encode_record(s)) for s in pool]
    print(f"  compact record: {np.mean(sizes) / 1e3:.1f} KB on average "
          f"(exact: {len(encode_record(pool[-1], compact=False)) / 1e3:.1f} KB)")

    hour = os.path.join(folder, "hour.cnnviz")
    for extra in ("", "-wal", "-shm"):
        if os.path.exists(hour + extra):
            os.unlink(hour + extra)
    print(f"writing an hour: {STEPS_PER_S * SECONDS:,} steps, {SNAPSHOTS_PER_S * SECONDS:,} snapshots, "
          f"budget {DEFAULT_SNAPSHOT_BUDGET / 2**20:.0f} MiB...", flush=True)
    st = write_hour(hour, pool, info)
    size_mb = os.path.getsize(hour) / 1e6
    busy = st["elapsed"]
    print(f"  {size_mb:.1f} MB on disk; {st['snapshots_stored']:,} snapshots kept (thinning level "
          f"{st['thinning_level']}), {st['snapshots_thinned']:,} thinned, {st['snapshots_dropped']} dropped; "
          f"{busy:.0f} s to write ({st['snapshot_bytes_written'] / 1e6:.0f} MB of records); "
          f"longest commit {st['longest_commit_s'] * 1e3:.0f} ms")
    ms, open_ms, kept = scrub(hour, args.samples)
    print(f"  open + all {STEPS_PER_S * SECONDS:,} step rows: {open_ms:.0f} ms; scrub over {kept:,} snapshots: "
          f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms")
    print(f"RESULT runfile_mb={size_mb:.1f} steps={st['steps']} snapshots_written={st['snapshots_written']} "
          f"snapshots_kept={st['snapshots_stored']} dropped={st['snapshots_dropped']} "
          f"write_snapshots_per_s={st['snapshots_written'] / busy:.0f} "
          f"write_mb_per_s={st['snapshot_bytes_written'] / 1e6 / busy:.1f} "
          f"longest_commit_ms={st['longest_commit_s'] * 1e3:.0f} open_ms={open_ms:.0f}")
    print(f"RESULT scrub_load_ms p50={np.percentile(ms, 50):.2f} p99={np.percentile(ms, 99):.2f} max={ms.max():.2f}")
    os.unlink(hour)

    if not args.skip_10k:
        big = os.path.join(folder, "10k.cnnviz")
        if os.path.exists(big):
            os.unlink(big)
        records = [encode_record(s) for s in pool]
        print("writing a run of 10,000 snapshots, all kept...", flush=True)
        secs = write_all_kept(big, records, 10_000)
        ms, open_ms, kept = scrub(big, args.samples, seed=2)
        print(f"  {os.path.getsize(big) / 1e6:.0f} MB, {kept:,} snapshots, written in {secs:.0f} s; "
              f"open {open_ms:.0f} ms")
        print(f"RESULT scrub_load_ms_10k p50={np.percentile(ms, 50):.2f} p99={np.percentile(ms, 99):.2f} "
              f"max={ms.max():.2f}")
        os.unlink(big)


if __name__ == "__main__":
    main()
