"""The engine in a child process, and the parent's handle on it (no Qt on either side).

Why a process: training in the window's process competes with its drawing for Python's
GIL (pyqtgraph paints in Python); measured with a thread, training ran at 50-75% of its
headless speed while the window drew. In a child it runs at full speed, and the window's
process never imports torch.

The child imports only ``visualizer.core`` (a test checks that it loads neither PyQt6 nor
pyqtgraph). Calls travel as ``(name, args, kwargs)`` messages restricted to
``service.COMMANDS``; events come back as ``(name, payload)`` with plain data only.
The parent's reader thread hands each event to a callback and notices a child that died
(killed, out of memory, a crash in native code) instead of leaving the viewer sending
commands to a queue nobody reads.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
import traceback
from typing import Any, Callable

from .messages import describe_error, refreeze

log = logging.getLogger(__name__)
ORPHAN_GRACE_S = 5.0   # a worker whose viewer died stops within this, cleanly or not
WORKER_NICENESS = 5    # the engine's process yields to the window's when the machine is busy
_QUIT = "__quit__"


def child_main(inbox, outbox, sample_limit) -> None:
    """The worker process: a listener thread applies the viewer's calls, the main thread runs the engine."""
    from .service import COMMANDS, EngineService
    try:
        # A little behind the window: when the cores are all busy (another program), the
        # window's drawing and input come first; training still gets every idle cycle.
        os.nice(WORKER_NICENESS)
    except OSError:
        pass
    service = EngineService(lambda name, payload: outbox.put((name, payload)), sample_limit=sample_limit)

    def listen() -> None:
        while True:
            name, args, kwargs = inbox.get()
            if name == _QUIT:
                service.request_quit()
                return
            if name not in COMMANDS:
                outbox.put(("failed", f"unknown command {name!r}"))
                continue
            try:
                getattr(service, name)(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a bad call is reported, not fatal
                outbox.put(("failed", describe_error(exc)))

    def watch_parent() -> None:
        # A viewer that was killed (SIGKILL, a crash) never sends the quit message, and a daemon
        # child is only stopped by a parent that exits normally: the worker trained on, orphaned,
        # at full speed. When the parent is gone, stop; if stopping hangs, go anyway.
        parent = multiprocessing.parent_process()
        if parent is None:
            return
        parent.join()
        service.request_quit()
        time.sleep(ORPHAN_GRACE_S)
        os._exit(0)

    threading.Thread(target=listen, name="engine-listener", daemon=True).start()
    threading.Thread(target=watch_parent, name="engine-parent-watch", daemon=True).start()
    try:
        service.run()
    except BaseException:  # noqa: BLE001 - the last word goes to the viewer, then the process ends
        outbox.put(("failed", "The worker process crashed:\n" + traceback.format_exc(limit=5)))
    outbox.close()
    outbox.join_thread()


class EngineProcess:
    """Parent side: start the child, send it calls, deliver its events to ``on_event`` (from a reader thread).

    ``on_event(name, payload)`` is called in the reader thread, never in the caller's: a GUI
    hands it on to its own thread (a queued Qt signal does exactly that). A child that ends
    without being asked to is reported once as ``("crashed", text)``.
    """

    def __init__(self, on_event: Callable[[str, Any], None], *, sample_limit: int | None = None):
        self._on_event = on_event
        ctx = multiprocessing.get_context("spawn")  # fork would copy the parent's threads' state
        self._to_child = ctx.Queue()
        self._from_child = ctx.Queue()
        self._proc = ctx.Process(target=child_main, args=(self._to_child, self._from_child, sample_limit),
                                 name="cnn-visualizer-worker", daemon=True)
        self._stop = threading.Event()
        self._exit_expected = threading.Event()
        self._reader = threading.Thread(target=self._read, name="engine-reader", daemon=True)
        self._closed = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def start(self) -> None:
        self._proc.start()
        self._reader.start()

    def call(self, name: str, *args, **kwargs) -> None:
        if not self._closed:
            self._to_child.put((name, args, kwargs))

    def is_alive(self) -> bool:
        return self._proc.is_alive() or self._reader.is_alive()

    def shutdown(self, timeout_s: float = 15.0) -> bool:
        """Ask the child to quit, wait, then terminate and kill it; True when it is gone. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._exit_expected.set()
            if self._proc.is_alive():
                self._to_child.put((_QUIT, (), {}))
                self._proc.join(timeout_s)
            if self._proc.is_alive():  # a child can be ended without harm to the viewer
                log.warning("the worker process did not stop in time; terminating it")
                self._proc.terminate()
                self._proc.join(3)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(2)
            self._stop.set()
            if self._reader.is_alive() and self._reader is not threading.current_thread():
                self._reader.join(5)
            self._to_child.cancel_join_thread()
        return not self.is_alive()

    # ---- the reader thread -------------------------------------------------------
    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                name, payload = self._from_child.get(timeout=0.25)  # the timeout only lets it notice a death
            except queue.Empty:
                if self._child_died():
                    return
                continue
            except (EOFError, OSError):
                self._child_died()
                return
            self._deliver(name, payload)

    def _deliver(self, name: str, payload) -> None:
        try:
            self._on_event(name, refreeze(payload))
        except Exception:  # never let the reader die
            log.exception("could not deliver %s from the worker", name)

    def _child_died(self) -> bool:
        code = self._proc.exitcode
        if code is None or self._exit_expected.is_set() or self._stop.is_set():
            return False
        while True:  # what it said before it died comes first
            try:
                self._deliver(*self._from_child.get(timeout=0.05))
            except (queue.Empty, EOFError, OSError, ValueError, TypeError):
                break
        how = f"exit code {code}" + (f", killed by signal {-code}" if code < 0 else "")
        self._deliver("crashed", f"The training process stopped unexpectedly ({how}); it has to be restarted "
                                 "and unsaved training progress is lost.")
        return True
