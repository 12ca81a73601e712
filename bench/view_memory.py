"""Memory of each view fed many synthetic snapshots: a quick way to find what grows in a long run.

The 30-minute soak (soak.py) says whether the app's memory stays flat; when it does
not, this says which view grows, in a minute instead of half an hour. Each view is
shown on its own (offscreen), fed ``--snapshots`` training snapshots (20 steps of
history each, an epoch result every third one, as LeNet-5 on the digits sends them)
and drawn after each; resident memory is printed as it goes. A view whose memory
still rises after its history caps are reached (a few thousand snapshots) keeps
something per snapshot.

    .venv/bin/python bench/view_memory.py [--snapshots 9000] [--view CurvesView]
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "gui"))   # the synthetic snapshots the view tests use


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshots", type=int, default=9000)
    ap.add_argument("--view", action="append", default=[], help="class name (default: every view)")
    args = ap.parse_args()

    import numpy as np
    import psutil
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from snapshot_factory import make_probe, make_training

    from visualizer.core.snapshot import EpochEnd
    from visualizer.gui.allocator import fix_mmap_threshold
    from visualizer.gui.main_window import CURVES_CLASS, OVERVIEW_CLASS, VIEW_CLASSES, _load_class

    fix_mmap_threshold()   # as the app's GUI process
    me = psutil.Process()
    probe = make_probe()
    rng = np.random.default_rng(0)
    every = max(1, args.snapshots // 6)
    for module, name in (*VIEW_CLASSES, OVERVIEW_CLASS, CURVES_CLASS):
        if args.view and name not in args.view:
            continue
        view = _load_class(module, name)()
        view.resize(900, 500)
        view.show()
        view.set_layer("C3")
        marks = []
        for i in range(args.snapshots):
            view.show_training(make_training(step=20 * (i + 1), history_rows=20, probe=probe,
                                             norms=rng.uniform(1e-3, 1e-1, 5), loss=float(rng.uniform(0.1, 2))))
            if i % 3 == 0:
                view.show_epoch(EpochEnd(i // 3, 20 * (i + 1), 0.5, 0.8, 0.4, 0.85))
            view.flush()
            view.repaint()
            app.processEvents()
            if i % every == 0 or i == args.snapshots - 1:
                gc.collect()
                marks.append(me.memory_info().rss / 2**20)
        view.close()
        view.deleteLater()
        app.processEvents()
        half = marks[len(marks) // 2]
        print(f"{name:<18} RSS MB at each sixth: {' '.join(f'{m:6.1f}' for m in marks)}"
              f"   second half: {marks[-1] - half:+5.1f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
