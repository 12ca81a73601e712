"""What the Recorder costs a user's own training loop.

Target (issue 9 §2): <= 1% of the training time of LeNet-5 and of ResNet-18 (32x32, batch 64)
at the default rate. The same plain loop (SGD, random batches of a synthetic 32x32 set) runs
without and with ``Recorder(model, path, probe=..., optimizer=opt)`` (defaults: hz=10,
budget 1%), interleaved, several rounds: these machines are shared and noisy, so the best
round of each is compared, and the recorder's own time (on the training thread: the step
calls, the weight copies, the snapshot after the optimizer step) is reported as well.

    ./dev bench recorder_overhead [--seconds 20] [--rounds 3] [--models lenet5,resnet18]

Ends with one line per model:
    RESULT <model> overhead_pct=<recorder time / training time> wall_ratio=<with/without> snapshots_per_s=..
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from visualizer.core.architectures import build_model
from visualizer.record import Recorder

WIDTH = {"lenet5": 1.0, "resnet18": 0.5}   # the zoo's defaults at 32x32


def loop(arch: str, seconds: float, record: bool, folder: Path) -> tuple[float, float, int, int]:
    """(seconds per step, recorder seconds per step, snapshots, steps) for ``seconds`` of training."""
    torch.manual_seed(0)
    x, y = torch.rand(2048, 3, 32, 32), torch.randint(0, 10, (2048,))
    model = build_model(arch, in_channels=3, input_size=32, width=WIDTH[arch],
                        batchnorm=arch == "resnet18")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rec = Recorder(model, folder / f"{arch}-{time.time_ns()}.cnnviz", probe=(x[:1], y[:1]),
                   optimizer=opt) if record else None
    spent = [0.0]
    if rec is not None:     # the recorder's time on the training thread: its calls and its optimizer hook
        step_fn, finish_fn = rec.step, rec._finish

        def timed_step(*a, **k):
            t = time.perf_counter()
            step_fn(*a, **k)
            spent[0] += time.perf_counter() - t

        def timed_finish(*a, **k):
            t = time.perf_counter()
            finish_fn(*a, **k)
            spent[0] += time.perf_counter() - t
        rec.step, rec._finish = timed_step, timed_finish
    steps, warm = 0, 5
    t0 = None
    while True:
        if steps == warm:
            t0, spent[0] = time.perf_counter(), 0.0
            recorded0 = rec.stats["recorded"] if rec else 0
        i = torch.randint(0, 2048, (64,))
        opt.zero_grad()
        loss = F.cross_entropy(model(x[i]), y[i])
        loss.backward()
        if rec is not None:
            rec.step(steps, loss=loss)
        opt.step()
        steps += 1
        if t0 is not None and time.perf_counter() - t0 >= seconds:
            break
    wall = time.perf_counter() - t0
    n = steps - warm
    snaps = rec.stats["recorded"] - recorded0 if rec else 0
    if rec is not None:
        rec.close()
    return wall / n, spent[0] / n, snaps, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="lenet5,resnet18")
    args = ap.parse_args()
    torch.set_num_threads(2)
    folder = Path(tempfile.mkdtemp(prefix="recorder-bench-"))
    results = []
    print(f"{'model':<10} {'plain ms/step':>13} {'recorded ms/step':>16} {'wall ratio':>10} {'recorder':>9} "
          f"{'snaps/s':>8}")
    for arch in args.models.split(","):
        plain, recorded, costs, rates = [], [], [], []
        for _ in range(args.rounds):
            p, _, _, _ = loop(arch, args.seconds, False, folder)
            r, spent, snaps, n = loop(arch, args.seconds, True, folder)
            plain.append(p)
            recorded.append(r)
            costs.append(spent / r)
            rates.append(snaps / (r * n))
        p, r = min(plain), min(recorded)
        pct = 100 * statistics.median(costs)
        rate = statistics.median(rates)
        print(f"{arch:<10} {1000 * p:>13.2f} {1000 * r:>16.2f} {r / p:>10.3f} {pct:>8.2f}% {rate:>8.1f}")
        results.append(f"RESULT {arch} overhead_pct={pct:.2f} wall_ratio={r / p:.3f} snapshots_per_s={rate:.1f}")
    print("wall ratio: ms/step with the recorder / without (best of rounds); recorder: its time on the training "
          "thread / training time (median of rounds)")
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
