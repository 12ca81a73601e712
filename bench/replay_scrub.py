"""Scrubbing a recorded run: from a drag on the timeline to every visible view drawn.

Target (issue 9 §4): a scrub to any step of a 10,000-step run is drawn in <= 50 ms.
A user's plain LeNet-5 loop is recorded with the real Recorder (a snapshot every few
steps, as the 1% budget gives them); the run is opened in the real window (offscreen,
1600x1000, every view docked side by side: the worst case), and for random steps the
time from the seek to the last visible view drawn is measured.

    ./dev bench replay_scrub [--steps 10000] [--scrubs 200]

Ends with:  RESULT replay_scrub steps=<n> snapshots=<k> p50_ms=.. p99_ms=.. max_ms=..
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from live_window import make_app, open_window


def record_run(path: Path, steps: int) -> None:
    import torch
    import torch.nn.functional as F

    from visualizer.core.architectures import build_model
    from visualizer.record import Recorder
    torch.manual_seed(0)
    x, y = torch.rand(512, 1, 32, 32), torch.randint(0, 10, (512,))
    model = build_model("lenet5", in_channels=1, input_size=32)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    # A snapshot every few steps whatever the machine's speed: hz and budget set high, and
    # the loop records every third step by giving capture a chance only then.
    with Recorder(model, path, probe=(x[:1], y[:1]), optimizer=opt, hz=1e6, budget=1.0, channels=16) as rec:
        for step in range(steps):
            i = torch.randint(0, 512, (64,))
            opt.zero_grad()
            loss = F.cross_entropy(model(x[i]), y[i])
            loss.backward()
            rec.note(step, loss, epoch=step // 1000)
            if step % 3 == 0:
                rec.capture(step, epoch=step // 1000)
            opt.step()
            if step % 1000 == 999:
                rec.epoch_end(step // 1000, step, train_loss=float(loss.detach()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--scrubs", type=int, default=200)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="replay-bench-"))
    run = folder / "run.cnnviz"
    t = time.perf_counter()
    record_run(run, args.steps)
    print(f"recorded {args.steps} steps in {time.perf_counter() - t:.1f} s ({run.stat().st_size / 2**20:.1f} MB)")
    app = make_app()
    window, controller = open_window(app, process=False)
    assert window.open_run(str(run)), window.last_message
    visible = [v for v in window.views if v.isVisible()]
    snapshots = window.replay.snapshot_steps()
    rng = random.Random(0)
    times = []
    for _ in range(args.scrubs):
        step = rng.randrange(args.steps)
        app.processEvents()
        t0 = time.perf_counter()
        window.replay.seek(step)            # what a drag of the handle to `step` asks
        for v in visible:
            v.flush()                       # every visible view drawn with that step's data
        times.append(1000 * (time.perf_counter() - t0))
    times.sort()
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
    print(f"{len(visible)} visible views; scrub to a random step: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"max {times[-1]:.1f} ms")
    print(f"RESULT replay_scrub steps={args.steps} snapshots={len(snapshots)} p50_ms={p50:.1f} p99_ms={p99:.1f} "
          f"max_ms={times[-1]:.1f}")
    window.close()


if __name__ == "__main__":
    main()
