"""A training loop's stand-in, run as a separate process by test_runfile.py.

usage: writer_child.py PATH kill      write until killed, printing "committed STEP" after each commit
       writer_child.py PATH follow N  write N steps at a training-like pace, then close and print "closed"
"""
import sys
import time

import numpy as np

from visualizer.core.record.runfile import RunWriter


def main() -> None:
    path, mode = sys.argv[1], sys.argv[2]
    total = int(sys.argv[3]) if len(sys.argv) > 3 else None
    rng = np.random.default_rng(0)
    writer = RunWriter(path, {"arch": "child"}, commit_interval=0.05, snapshot_budget=2 << 20)
    print("ready", flush=True)
    last = None
    step = 0
    while total is None or step < total:
        epoch = step // 500
        if step % 10 == 0:
            writer.append_snapshot(step, epoch, {"step": step, "maps": rng.standard_normal((6, 28, 28)).astype(np.float32)})
        writer.append_step(step, epoch, 1.0 / (step + 1), 0.01, 0.5)
        if step % 500 == 499:
            writer.append_epoch(epoch, step, 1.0, 0.5, 1.1, 0.4)
        committed = writer.stats["last_committed_step"]
        if committed != last:
            print("committed", committed, flush=True)
            last = committed
        step += 1
        time.sleep(0.0005 if mode == "kill" else 0.001)
    writer.close()
    print("closed", flush=True)


if __name__ == "__main__":
    main()
