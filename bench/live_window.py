"""The app's window as the GUI benches open it: real MainWindow, real worker, offscreen.

Shared by gui_throughput.py, gui_responsiveness.py and soak.py, so that each sets up
the window the same way the app does (run_gui) and measures GUI timing the same way.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CNN_VISUALIZER_CONFIG_DIR", str(Path("/tmp") / f"cnnvis-bench-{os.getpid()}"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np


def make_app():
    """The QApplication with the app's exception hooks and interpreter settings."""
    from PyQt6.QtWidgets import QApplication

    from visualizer.gui.app import install_exception_hooks, tune_interpreter
    app = QApplication.instance() or QApplication(sys.argv[:1])
    install_exception_hooks(lambda: None)
    tune_interpreter()  # as run_gui does
    return app


def open_window(app, *, process: bool = True, all_views: bool = True, name: str = "bench"):
    """A 1600x1000 main window, shown and started, with the sample model and data open.

    ``all_views``: every view docked side by side (no hidden tabs: the worst case).
    Returns (window, controller).
    """
    from visualizer.gui.controller import Controller
    from visualizer.gui.main_window import MainWindow
    from visualizer.gui.settings import Settings

    settings = Settings(Path(os.environ["CNN_VISUALIZER_CONFIG_DIR"]) / f"{name}-{time.time_ns()}.ini")
    controller = Controller(settings, process=process)
    window = MainWindow(settings, controller=controller, restore=False)
    window.resize(1600, 1000)
    if all_views:
        show_every_view(window)
    window.show()
    window.start()
    wait(app, lambda: controller.session.model is not None and controller.data is not None, 120)
    return window, controller


def show_every_view(window) -> None:
    """Untabify: one dock per view, all on screen at once (the worst case for the GUI)."""
    from PyQt6.QtCore import Qt
    docks = [window.view_docks[v] for v in window.views if v is not window.overview and v is not window.curves]
    for i, d in enumerate(docks[1:], 1):
        window.splitDockWidget(docks[i - 1], d, Qt.Orientation.Horizontal if i % 2 else Qt.Orientation.Vertical)


def wait(app, cond, timeout: float) -> None:
    end = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.002)  # a benchmark driver, not a test: yield the core between polls


class TimerLateness:
    """A precise 16 ms GUI timer; how late it fires says how busy the GUI thread was.

    The intervals go into a histogram allocated up front (0.1 ms bins up to 10 s), not a
    list: over a 30-minute soak a list of time stamps alone grew the measured process by
    3.6 MB.
    """

    INTERVAL_MS = 16
    LONG_GAP_MS = 200
    BIN_MS = 0.1
    BINS = 100_000

    def __init__(self):
        from PyQt6.QtCore import Qt, QTimer
        self.counts = np.zeros(self.BINS, np.int64)
        self.count = 0              # timer firings so far
        self.last: float | None = None   # perf_counter() of the latest firing
        self.max_ms = 0.0
        self.long_gaps: list[tuple[float, float]] = []   # (end, ms) of each interval over LONG_GAP_MS
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(self.INTERVAL_MS)
        self._timer.timeout.connect(self._fired)

    def _fired(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            ms = (now - self.last) * 1000.0
            self.counts[min(int(ms / self.BIN_MS), self.BINS - 1)] += 1
            self.max_ms = max(self.max_ms, ms)
            if ms > self.LONG_GAP_MS:
                self.long_gaps.append((now, ms))
        self.last = now
        self.count += 1

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def percentile_ms(self, q: float) -> float:
        total = int(self.counts.sum())
        if not total:
            return 0.0
        rank = int(np.searchsorted(np.cumsum(self.counts), q / 100.0 * total))
        return (rank + 0.5) * self.BIN_MS   # the middle of the bin the q-th interval falls in

    def summary(self) -> dict:
        return {"intervals": int(self.counts.sum()), "p50_ms": round(self.percentile_ms(50), 1),
                "p99_ms": round(self.percentile_ms(99), 1), "max_ms": round(self.max_ms, 1)}


class StallWatch(threading.Thread):
    """Catches the GUI thread in the act: when the timer is late by ``threshold_s``, its stack.

    A daemon thread polls the TimerLateness firings; when the last one is older than the
    threshold it records, once per stall, where the GUI thread is (sys._current_frames),
    and when the timer fires again, how long the stall lasted. Python frames only: a
    stall inside Qt shows the Python call that entered it (often app.exec).
    """

    def __init__(self, lateness: TimerLateness, threshold_s: float = 0.3, on_stall=None):
        super().__init__(name="stall-watch", daemon=True)
        self.lateness = lateness
        self.threshold_s = threshold_s
        self.on_stall = on_stall
        self.stalls: list[dict] = []      # {"at_s", "ms", "stack"}
        self._gui = threading.main_thread().ident
        self._t0 = time.perf_counter()
        self._stop = threading.Event()

    def run(self) -> None:
        caught, last_before = None, 0.0   # the firing count when the current stall was caught, and its time
        seen = 0                          # long gaps already accounted for
        while not self._stop.wait(0.05):
            n, last = self.lateness.count, self.lateness.last
            if last is None:
                continue
            gaps = self.lateness.long_gaps
            if caught is not None and n > caught:
                stall = self.stalls[-1]
                ended = [ms for end, ms in gaps[seen:] if end > last_before]
                stall["ms"] = round(ended[0], 1) if ended else None
                seen = len(gaps)
                if self.on_stall:
                    self.on_stall(stall)
                caught = None
            if caught is None:
                # A gap this thread never saw: the GUI thread held the GIL throughout (a C call
                # or a garbage collection), so no stack could be taken.
                for end, ms in gaps[seen:]:
                    if ms > self.threshold_s * 1000.0:
                        self.stalls.append({"at_s": round(end - ms / 1000.0 - self._t0, 1), "ms": round(ms, 1),
                                            "stack": "(the GUI thread held the GIL: no stack taken)"})
                        if self.on_stall:
                            self.on_stall(self.stalls[-1])
                seen = len(gaps)
            if caught is None and time.perf_counter() - last > self.threshold_s:
                frame = sys._current_frames().get(self._gui)
                stack = "".join(traceback.format_stack(frame)[-12:]) if frame else "(no frame)"
                self.stalls.append({"at_s": round(last - self._t0, 1), "ms": None, "stack": stack})
                caught, last_before = n, last

    def stop(self) -> None:
        self._stop.set()
