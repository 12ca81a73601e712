"""Soak: a long instrumented training run with the window open; memory must stay flat.

Target (issue 4): resident memory flat (within +-50 MB after warm-up) over 30 minutes, GUI
responsive. The window is the real app's (worker in a child process, offscreen platform),
LeNet-5 trains on the digits with snapshots at 10/s, every view refreshing, in one run
long enough to last the whole soak (restarted only if it ends early). Resident memory of the GUI process
and of the worker process is sampled every few seconds, and a 16 ms GUI timer records how
late it fires; with --progress, each stall over 300 ms is printed with where the GUI
thread was.

    ./dev bench soak --minutes 30          # the documented local run
    ./dev bench soak --minutes 2 --json    # what CI runs (tests/robustness/test_soak.py)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_window import StallWatch, TimerLateness, make_app, open_window


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=None, help="seconds before the baseline (default 20%%, max 120)")
    ap.add_argument("--json", action="store_true", help="print one JSON summary line")
    ap.add_argument("--progress", action="store_true", help="print every memory sample to stderr as it is taken")
    ap.add_argument("--close", action="append", default=[], metavar="VIEW",
                    help="close this view's dock (class name, e.g. FilterView; 'all' for every view): "
                         "to find which view's drawing grows memory")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="N",
                    help="trace Python allocations (slow): print the N places whose memory grew most "
                         "between the end of the warm-up and the end")
    args = ap.parse_args()
    if args.tracemalloc:
        import tracemalloc
        tracemalloc.start(12)

    import psutil
    from PyQt6.QtCore import QTimer

    from visualizer.core.config import TrainConfig
    from visualizer.gui.app import settle

    app = make_app()
    errors: list[str] = []
    window, controller = open_window(app, name="soak")
    controller.worker.failed.connect(lambda msg: errors.append(str(msg)))
    for view in window.views:
        if "all" in args.close or type(view).__name__ in args.close:
            window.view_docks[view].close()
    settle(trains_here=False)   # as run_gui does
    config = TrainConfig(epochs=1_000_000, batch_size=64, snapshot_hz=10)

    def train():
        controller.start_training(config)
    runs = [0]

    def restart_when_done(state):
        if state == "stopped" and not closing[0]:
            runs[0] += 1
            QTimer.singleShot(200, train)
    closing = [False]
    controller.session.state_changed.connect(restart_when_done)
    train()

    me = psutil.Process()

    def rss_parts() -> tuple[float, float]:
        """(GUI process, worker processes) resident MB."""
        kids = 0
        for child in me.children(recursive=True):
            try:
                kids += child.memory_info().rss
            except psutil.Error:
                pass
        return me.memory_info().rss / 2**20, kids / 2**20

    lateness = TimerLateness()
    lateness.start()

    def report_stall(stall: dict) -> None:
        if args.progress:
            print(f"stall of {stall['ms']} ms at {stall['at_s'] / 60:.2f} min; the GUI thread was in:\n"
                  f"{stall['stack']}", file=sys.stderr, flush=True)
    watch = StallWatch(lateness, on_stall=report_stall)
    watch.start()

    duration = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(120.0, 0.2 * duration)
    samples: list[tuple[float, float]] = []
    parts: list[tuple[float, float]] = []
    snapshots = [0]
    controller.session.training_changed.connect(lambda _s: snapshots.__setitem__(0, snapshots[0] + 1))
    t0 = time.perf_counter()

    traced = []   # the tracemalloc snapshot at the end of the warm-up

    def sample():
        now = time.perf_counter()
        if args.tracemalloc and not traced and now - t0 >= warmup:
            traced.append(tracemalloc.take_snapshot())
        gui, worker = rss_parts()
        samples.append((now - t0, gui + worker))
        parts.append((gui, worker))
        if args.progress:
            print(f"{(now - t0) / 60:6.2f} min  GUI {gui:7.1f} MB  worker {worker:7.1f} MB", file=sys.stderr, flush=True)
        if now - t0 >= duration:
            closing[0] = True
            watch.stop()    # the timer stops with the event loop: not a stall
            app.quit()
    sampler = QTimer()
    sampler.timeout.connect(sample)
    sampler.start(5000 if duration > 300 else 2000)
    app.exec()
    window.close()
    controller.shutdown()

    base = [m for t, m in samples if t >= warmup]
    timer = lateness.summary()
    result = {
        "minutes": args.minutes, "warmup_s": warmup, "runs_completed": runs[0], "snapshots": snapshots[0],
        "rss_start_mb": round(samples[0][1], 1) if samples else None,
        "rss_after_warmup_mb": round(base[0], 1) if base else None,
        "rss_end_mb": round(samples[-1][1], 1) if samples else None,
        "rss_drift_mb": round(max(base) - base[0], 1) if base else None,
        "rss_range_after_warmup_mb": round(max(base) - min(base), 1) if base else None,
        "gui_drift_mb": round(parts[-1][0] - parts[len(parts) - len(base)][0], 1) if base else None,
        "worker_drift_mb": round(parts[-1][1] - parts[len(parts) - len(base)][1], 1) if base else None,
        "timer_p99_ms": timer["p99_ms"],
        "timer_max_ms": timer["max_ms"],
        "stalls": [(s["at_s"], s["ms"]) for s in watch.stalls if s["ms"]],   # (seconds in, ms) of each over 300 ms
        "worker_errors": errors,
    }
    if traced:
        grown = tracemalloc.take_snapshot().compare_to(traced[0], "traceback")
        print(f"Python allocations after the warm-up: {sum(g.size_diff for g in grown) / 2**20:+.1f} MB; "
              f"the {args.tracemalloc} places that grew most:", file=sys.stderr)
        for g in grown[:args.tracemalloc]:
            print(f"{g.size_diff / 2**10:+9.1f} KiB {g.count_diff:+7d} blocks", file=sys.stderr)
            print("\n".join("    " + line for line in g.traceback.format()[-8:]), file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        for t, m in samples[:: max(1, len(samples) // 20)]:
            print(f"{t / 60:6.1f} min  {m:8.1f} MB")
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    from visualizer.gui.app import end_process
    # As the app ends: without the interpreter's teardown of the Qt objects, which crashed now and
    # then after the results were printed (a soak exited with SIGSEGV; gui/app.end_process).
    end_process(main())
