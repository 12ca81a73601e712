"""The desktop app's entry: QApplication, exception hooks, theme, the main window.

``cnn-visualizer [FILE] [--lesson NAME|FILE] [--train] [--theme NAME] [--quit-after SECONDS]``

Order matters: pyqtgraph replaces ``sys.excepthook`` when imported, so our hooks
are installed after importing it. They log the traceback and show a message
instead of letting PyQt abort the process (an exception escaping a slot is
fatal under PyQt6 with the default hook).
"""
from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
import time
import traceback

from .allocator import fix_mmap_threshold

log = logging.getLogger("visualizer")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cnn-visualizer", description="Watch a CNN work while it trains.")
    p.add_argument("file", nargs="?", default=None, help="checkpoint, state dict, model .py file or image")
    p.add_argument("--train", action="store_true", help="start training as soon as the model is open")
    p.add_argument("--lesson", default=None, metavar="NAME|FILE",
                   help="open a lesson: a built-in one by name (see the Lessons menu) or a lesson file")
    p.add_argument("--theme", choices=("dark", "light", "high_contrast"), default=None)
    p.add_argument("--thread-worker", action="store_true",
                   help="train in a thread of the GUI process instead of a child process (debugging)")
    p.add_argument("--quit-after", type=float, default=None, metavar="SECONDS",
                   help="close the window after this many seconds (demos, tests, benchmarks)")
    args, _qt_args = p.parse_known_args(argv or [])
    return args


class _ErrorReporter:
    """Routes uncaught exceptions from any thread to one message in the GUI thread."""

    def __init__(self, window_getter):
        from PyQt6.QtCore import QObject, pyqtSignal

        class _Bridge(QObject):
            report = pyqtSignal(str)

        self._bridge = _Bridge()
        self._window_getter = window_getter
        self._shown = 0
        # Queued across threads: a worker-thread exception is shown by the GUI thread.
        self._bridge.report.connect(self._show)

    def _show(self, text: str) -> None:
        if self._shown >= 3:  # an exception in a paint loop must not open endless boxes
            return
        self._shown += 1
        window = self._window_getter()
        if window is not None and hasattr(window, "show_message"):
            window.show_message("error", "An unexpected error occurred (the app keeps running):\n\n" + text)

    def excepthook(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("uncaught exception:\n%s", text)
        self._bridge.report.emit("".join(traceback.format_exception_only(exc_type, exc)).strip())

    def thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        self.excepthook(args.exc_type, args.exc_value, args.exc_traceback)


GIL_SWITCH_INTERVAL_S = 1e-4


def tune_interpreter() -> None:
    """Let the training thread get the GIL back quickly while the GUI thread paints.

    Torch releases the GIL inside every op and must take it back to run the next
    line of Python. With CPython's default 5 ms switch interval, a GUI thread busy
    drawing (pyqtgraph paints in Python) makes the worker wait up to 5 ms per op:
    measured, LeNet-5 training fell to about 50% of its headless speed with the
    window open; at 0.1 ms it keeps about 70-77%. The GUI is not slowed noticeably.
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def settle(trains_here: bool) -> None:
    """Once the window is built: tune memory for the long run ahead (the app, benches)."""
    if not trains_here:
        fix_mmap_threshold()   # this process only draws: see allocator.py
    # Everything built so far (torch, Qt, pyqtgraph modules) lives for the whole run: move it out
    # of the collector's sight, or each full collection scans it and stalls the GUI for 40-110 ms.
    gc.collect()
    gc.freeze()


def enable_crash_traces() -> None:
    """A crash inside Qt or a native library (a segmentation fault) prints the Python stack of every
    thread on stderr before the process dies, so a report can say where it happened."""
    import faulthandler
    try:
        faulthandler.enable(all_threads=True)
    except (AttributeError, RuntimeError, ValueError, OSError):   # no usable stderr (a windowed launcher)
        pass


def install_exception_hooks(window_getter) -> _ErrorReporter:
    import pyqtgraph  # noqa: F401 - must come first: it installs its own sys.excepthook
    reporter = _ErrorReporter(window_getter)
    sys.excepthook = reporter.excepthook
    threading.excepthook = reporter.thread_hook
    return reporter


def run_gui(path: str | None = None, argv: list[str] | None = None) -> int:
    """Run the desktop app; returns the process exit code."""
    args = parse_args(list(argv) if argv is not None else ([path] if path else []))
    if path and not path.startswith("-"):
        args.file = path
    from .display import NO_DISPLAY_HINT, display_problem
    problem = display_problem()
    if problem:   # Qt would abort the process (exit 134) in the QApplication constructor
        print(f"cnn-visualizer: error: {problem}; {NO_DISPLAY_HINT}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    enable_crash_traces()
    tune_interpreter()

    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "cnn-visualizer"])
    app.setApplicationName("cnn-visualizer")
    app.setOrganizationName("cnn-visualizer")
    window_ref: list = [None]
    reporter = install_exception_hooks(lambda: window_ref[0])

    from .controller import Controller
    from .main_window import MainWindow
    from .settings import Settings
    from .theme import apply_theme

    settings = Settings()
    sweep_interrupted_saves(settings)
    theme = args.theme or settings.theme
    try:
        apply_theme(app, theme)
    except ValueError:
        apply_theme(app, "dark")
    # The worker trains in a child process: the GUI thread's drawing then never
    # competes with training for the GIL (see worker.Worker).
    controller = Controller(settings, process=not args.thread_worker)
    window = MainWindow(settings, controller=controller)
    window_ref[0] = window
    window.theme_actions.get(theme, window.theme_actions["dark"]).setChecked(True)
    window.show()
    app.processEvents()
    from visualizer.cli import STARTED
    logging.getLogger(__name__).info("window shown %.2f s after start", time.perf_counter() - STARTED)
    # Take the keyboard at once (Space starts training), also without a window manager.
    window.raise_()
    window.activateWindow()
    window.start(args.file)
    settle(trains_here=args.thread_worker)
    if args.lesson:
        open_lesson(window, args.lesson, start=args.train)
    elif args.train:
        start_training_when_ready(window, args.file)
    if args.quit_after is not None:
        QTimer.singleShot(int(args.quit_after * 1000), window.close)

    wake = install_exit_signals(app, window)

    rc = app.exec()
    wake.stop()
    window.close()                 # its closeEvent writes the settings, also after a quit from elsewhere
    window.controller.shutdown()
    settings.sync()
    del reporter
    return rc


def end_process(rc: int):
    """Exit with ``rc`` now, without the interpreter's teardown of the Qt objects (after ``run_gui``:
    the window is closed, its settings written, the engine ended, and nothing else is left to save).

    Left to the interpreter's exit, PyQt destroys the window's C++ objects in no particular order,
    and that crashed the process (SIGSEGV with no Python frame) in about one closing in forty
    under load; deleting the window explicitly first crashed in two closings of three. Ending
    without that teardown is pyqtgraph's own remedy for such crashes (``pyqtgraph.exit``).
    """
    logging.shutdown()
    # What the interpreter's exit would still do for multiprocessing: release the engine's queue's
    # semaphores (else the resource tracker warns of "leaked semaphore objects" at every exit).
    import multiprocessing.util
    run_finalizers = getattr(multiprocessing.util, "_run_finalizers", None)   # (the stdlib's own, private)
    if run_finalizers is not None:
        try:
            run_finalizers(0)
        except Exception:  # noqa: BLE001 - a tidy-up; the exit itself must happen
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(rc)


EXIT_DEADLINE_S = 4.5   # SIGTERM/SIGINT: the app is gone within this, whatever state it is in


def install_exit_signals(app, window):
    """SIGTERM/SIGINT close the app the normal way (run stopped and autosaved, worker joined, exit 0),
    within ``EXIT_DEADLINE_S`` in every state: idle, training, a model stuck in ``forward``, a modal
    dialog open (its nested event loop would keep ``app.exec()`` from returning).

    Python runs signal handlers only between bytecodes of the main thread, so a timer keeps
    waking it up. The handler starts a deadline on another thread first: if the orderly close
    has not finished by then (the GUI thread itself stuck), the worker process is killed and
    the app ends with ``os._exit``. Returns the wake-up timer (keep a reference).
    """
    import os

    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    def hard_exit() -> None:
        pid = window.controller.worker.pid
        logging.getLogger(__name__).error("the app did not close within %.1f s; ending it", EXIT_DEADLINE_S)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os._exit(1)

    def on_signal(signum, _frame) -> None:
        deadline = threading.Timer(EXIT_DEADLINE_S, hard_exit)
        deadline.daemon = True
        deadline.start()
        logging.getLogger(__name__).info("%s: closing", signal.Signals(signum).name)
        # A modal dialog runs its own event loop: end it, or app.exec() never returns.
        for _ in range(10):
            modal = QApplication.activeModalWidget()
            if modal is None:
                break
            modal.close()
            if hasattr(modal, "reject"):
                modal.reject()
        window.close()
        app.quit()   # leaves every event loop, nested ones too

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    return wake


def sweep_interrupted_saves(settings) -> list:
    """Remove temporary files that a save killed mid-write left beside our checkpoints.

    Looks in the shipped models folder and the folders of recently used files;
    finished checkpoints are never touched (the sweep only matches our temp names).
    """
    from pathlib import Path

    from visualizer.core.checkpoint import sweep_stale_temp
    from visualizer.core.resources import models_dir
    folders = {models_dir()}
    folders.update(Path(p).parent for p in settings.recent_files())
    removed = []
    for folder in folders:
        try:
            removed += sweep_stale_temp(folder)
        except OSError as exc:   # an unreadable folder must not stop the app from starting
            logging.getLogger(__name__).warning("could not sweep %s: %s", folder, exc)
    for p in removed:
        logging.getLogger(__name__).info("removed the leftover of an interrupted save: %s", p)
    return removed


def open_lesson(window, name_or_path: str, *, start: bool = False) -> bool:
    """``--lesson``: a built-in lesson by name, else a lesson file; a bad one is said in the window."""
    from visualizer.core.errors import LoadError
    from visualizer.core.lesson_catalog import LESSONS_BY_NAME
    from visualizer.core.lessons import read_lesson
    lesson = LESSONS_BY_NAME.get(name_or_path)
    if lesson is None and (name_or_path.endswith(".json") or os.path.exists(name_or_path)):
        try:
            lesson = read_lesson(name_or_path)
        except LoadError as exc:
            window.show_message("error", f"Could not open the lesson.\n\n{exc}")
            return False
    if lesson is None:
        window.show_message("warning", f"No lesson called '{name_or_path}'. The lessons: "
                                       + ", ".join(LESSONS_BY_NAME) + ".")
        return False
    window.lesson_runner.open(lesson, start=start)
    return True


def start_training_when_ready(window, path: str | None = None) -> None:
    """``--train``: start once the model (and its data) has arrived: the one from ``path`` when a file
    was given (the sample opens first, and training it would be replaced at once), else the first."""
    import os
    session = window.session
    wanted = None
    if path:
        wanted = path if ".py:" in path else os.path.abspath(path)

    def matches(model) -> bool:
        if wanted is None:
            return True
        return model.arch == wanted or (model.source is not None and os.path.abspath(model.source) == wanted)

    def on_model(model) -> None:
        if matches(model):
            session.model_changed.disconnect(on_model)
            window.controller.start_training()

    if session.model is not None and matches(session.model):
        window.controller.start_training()
    else:
        session.model_changed.connect(on_model)
