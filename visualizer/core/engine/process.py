"""The engine in a child process, and the parent's handle on it (no Qt on either side).

Why a process: training in the window's process competes with its drawing for Python's
GIL (pyqtgraph paints in Python); measured with a thread, training ran at 50-75% of its
headless speed while the window drew. In a child it runs at full speed, the window's
process never imports torch, and a user's model that crashes or hangs takes down only
the child, which can always be ended (terminate, then kill) and started again.

The child imports only ``visualizer.core`` (a test checks that it loads neither PyQt6 nor
pyqtgraph). Calls travel as ``(name, args, kwargs)`` messages restricted to
``service.COMMANDS`` on a queue; events come back as ``(name, payload)`` with plain data
only, through a pipe whose writing end only the child holds: when the child dies, even in
the middle of a message (a segfault while a snapshot was being sent), the parent's reader
gets an end-of-file at once instead of waiting forever for the rest of the message.

Dead or alive but stuck: the child sends a heartbeat (``Pulse``) twice a second from its
own thread, saying what the engine's thread is doing and how long since its last progress.
Why a heartbeat rather than a deadline on each command's answer: the engine's work has no
natural bound (a training run lasts hours, a data set folder loads for minutes) and its
thread answers no command during a training step, so a deadline would either fire on
healthy work or have to guess per command; the heartbeat tells "busy and progressing"
(steps keep ticking) from "stuck in one call" (a user's ``forward`` or import that loops:
the pulse comes, progress does not) from "frozen" (native code holding the interpreter,
or a stopped process: no pulse at all). The parent reports ``unresponsive`` once per
episode (a second time if a stuck child then goes silent: now frozen; and ``responsive`` when
progress returns); only the user decides to end it.
"""
from __future__ import annotations

import atexit
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.util
import os
import queue
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable

from .activity import Activity
from .messages import Pulse, Unresponsive, describe_error, refreeze

log = logging.getLogger(__name__)
ORPHAN_GRACE_S = 5.0      # a worker whose viewer died stops within this, cleanly or not
PULSE_INTERVAL_S = 0.5    # the child's heartbeat
POLL_S = 0.25             # how often the parent's reader looks at the heartbeat between messages
FROZEN_AFTER_S = 10.0     # no message at all for this long: the child is frozen
START_PATIENCE_S = 120.0  # ... except before its first message (a spawned child imports torch first)
STOP_GRACE_S = 2.5        # shutdown: a clean stop (the run stopped and autosaved) may take this long ...
KILL_GRACE_S = 1.0        # ... then SIGTERM, this long, then SIGKILL: a window always closes within 5 s
WORKER_NICENESS = 5       # the engine's process yields to the window's when the machine is busy
_QUIT = "__quit__"


class EventSender:
    """Child side: every thread's events leave through one pipe, written by one thread.

    ``Connection.send`` is not thread-safe and blocks while the pipe is full; the engine's
    thread must neither interleave with the heartbeat nor wait for the viewer, so ``put``
    only queues (like ``multiprocessing.Queue``, whose pipe the parent would hold open).
    """

    def __init__(self, conn):
        self._conn = conn
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="engine-sender", daemon=True)
        self._thread.start()

    def put(self, item) -> None:
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._conn.send(item)   # pickled whole before a byte is written
            except (OSError, EOFError):
                return                  # the viewer is gone: nobody to tell
            except Exception as exc:  # noqa: BLE001 - an event that cannot be pickled is reported, not fatal
                try:
                    self._conn.send(("failed", f"could not send {item[0]!r} to the window: {describe_error(exc)}"))
                except (OSError, EOFError):
                    return

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued, then close the pipe (the parent reads the end of the file)."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        self._conn.close()


def child_main(inbox, events, sample_limit, options=None) -> None:
    """The worker process: a listener thread applies the viewer's calls, the main thread runs the engine."""
    sender = EventSender(events)
    activity = Activity()
    beating = threading.Event()

    def beat() -> None:
        while not beating.wait(PULSE_INTERVAL_S):
            sender.put(("pulse", activity.pulse()))

    # The heartbeat starts before the slow import of torch: the parent hears from us at once.
    threading.Thread(target=beat, name="engine-pulse", daemon=True).start()
    sender.put(("pulse", activity.pulse()))
    from .service import COMMANDS, EngineService
    try:
        # A little behind the window: when the cores are all busy (another program), the
        # window's drawing and input come first; training still gets every idle cycle.
        os.nice(WORKER_NICENESS)
    except OSError:
        pass
    service = EngineService(lambda name, payload: sender.put((name, payload)), sample_limit=sample_limit,
                            activity=activity, **dict(options or {}))

    def listen() -> None:
        while True:
            name, args, kwargs = inbox.get()
            if name == _QUIT:
                service.request_quit()
                return
            if name not in COMMANDS:
                sender.put(("failed", f"unknown command {name!r}"))
                continue
            try:
                getattr(service, name)(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a bad call is reported, not fatal
                sender.put(("failed", describe_error(exc)))

    def watch_parent() -> None:
        # A viewer that was killed (SIGKILL, a crash) never sends the quit message, and a daemon
        # child is only stopped by a parent that exits normally: the worker trained on, orphaned,
        # at full speed. When the parent is gone, stop (the run's autosave says "interrupted", so
        # the next start offers to resume it); if stopping hangs, go anyway.
        parent = multiprocessing.parent_process()
        if parent is None:
            return
        parent.join()
        service.request_quit(orphaned=True)
        time.sleep(ORPHAN_GRACE_S)
        os._exit(0)

    threading.Thread(target=listen, name="engine-listener", daemon=True).start()
    threading.Thread(target=watch_parent, name="engine-parent-watch", daemon=True).start()
    try:
        service.run()
    except BaseException:  # noqa: BLE001 - the last word goes to the viewer, then the process ends
        sender.put(("failed", "The worker process crashed:\n" + traceback.format_exc(limit=5)))
    beating.set()
    _exit_without_teardown(sender)


def _exit_without_teardown(sender: EventSender) -> None:
    """End the child now that the engine is closed (run file and autosave written): the exit handlers,
    the last events, then ``os._exit`` instead of the interpreter's teardown.

    That teardown is a garbage collection of everything the engine held (data sets, models, their
    snapshots), over a second on a slow machine, and it came after the pipe was closed: the parent,
    which gives a child that has closed its pipe ``KILL_GRACE_S`` to be gone, killed it on most closings
    mid-training there. Nothing is lost by skipping it: what is left to run at exit runs first here.
    """
    for finish in (getattr(atexit, "_run_exitfuncs", None), getattr(multiprocessing.util, "_exit_function", None)):
        try:
            if finish is not None:
                finish()    # (private, hence looked up: temporary files' finalizers, multiprocessing's own)
        except Exception:   # ending anyway
            log.exception("an exit handler failed")
    logging.shutdown()
    sender.close()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):   # a closed or missing stream: nothing to flush
            pass
    os._exit(0)


class EngineProcess:
    """Parent side: start the child, send it calls, deliver its events to ``on_event`` (from a reader thread).

    ``on_event(name, payload)`` is called in the reader thread, never in the caller's: a GUI
    hands it on to its own thread (a queued Qt signal does exactly that). Besides the
    engine's own events it delivers:

    * ``("crashed", text)`` once, when the child ends without being asked to (killed, out of
      memory, a crash in native code, or ``stop_now()``); the text names what it was doing;
    * ``("unresponsive", Unresponsive)`` when a living child shows no progress for longer than
      its activity's patience (``stuck_after_s`` overrides that patience: tests), or sends
      nothing at all; ``("responsive", None)`` when it shows progress again.

    Heartbeats themselves (``pulse``) are consumed here, not delivered.
    """

    child_main = staticmethod(child_main)   # what the child runs (a test gives one that dies mid-message)

    def __init__(self, on_event: Callable[[str, Any], None], *, sample_limit: int | None = None,
                 stuck_after_s: float | None = None, options: dict | None = None):
        self._on_event = on_event
        self._stuck_after_s = stuck_after_s
        ctx = multiprocessing.get_context("spawn")  # fork would copy the parent's threads' state
        self._to_child = ctx.Queue()
        self._events, child_end = ctx.Pipe(duplex=False)
        self._child_end = child_end
        self._proc = ctx.Process(target=self.child_main, args=(self._to_child, child_end, sample_limit, options),
                                 name="cnn-visualizer-worker", daemon=True)
        self._stop = threading.Event()
        self._exit_expected = threading.Event()
        self._stop_requested = False
        self._reader = threading.Thread(target=self._read, name="engine-reader", daemon=True)
        # Its own thread: the reader can be inside a message that a frozen child never finishes.
        self._watchdog = threading.Thread(target=self._watch_loop, name="engine-watchdog", daemon=True)
        self._closed = False
        self._started_at = 0.0
        self._last_heard: float | None = None
        self._pulse: Pulse | None = None
        self._unresponsive: Unresponsive | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def last_pulse(self) -> Pulse | None:
        """The child's latest heartbeat: what it was doing (also after it died)."""
        return self._pulse

    def start(self) -> None:
        self._proc.start()
        # The child has its own copy now. With ours closed, only the child holds the writing end,
        # so its death is an end-of-file for the reader, even in the middle of a message.
        self._child_end.close()
        self._started_at = time.monotonic()
        self._reader.start()
        self._watchdog.start()

    def call(self, name: str, *args, **kwargs) -> None:
        if not self._closed:
            self._to_child.put((name, args, kwargs))

    def is_alive(self) -> bool:
        return self._child_alive() or self._reader.is_alive()

    def _child_alive(self) -> bool:
        """Whether the child runs; not ``Process.is_alive()``, which two threads must not ask at once.

        The reader thread (the child closed its pipe) and a closing window both wait for the child;
        ``is_alive()`` reaps it with ``waitpid``, and the one that loses that race is told "alive" by the
        error it gets: the closing window then terminated a child that had ended cleanly. The
        sentinel (a pipe the child holds until it is gone) says it without reaping.
        """
        proc = self._proc
        if proc.exitcode is not None:
            return False
        try:
            return not multiprocessing.connection.wait([proc.sentinel], 0)
        except ValueError:      # not started
            return False

    def stop_now(self) -> None:
        """End a stuck child at the user's request: SIGTERM, then SIGKILL; returns at once.

        The reader then reports ``crashed`` (saying it was stopped on request), as for any
        death, so the viewer restarts the engine the same way.
        """
        if self._closed or not self._child_alive():
            return
        self._stop_requested = True
        threading.Thread(target=self._end_child, args=(0.0,), name="engine-stopper", daemon=True).start()

    def shutdown(self, timeout_s: float = STOP_GRACE_S) -> bool:
        """Ask the child to quit, wait ``timeout_s``, then terminate and kill it; True when it is gone.

        Safe to call twice. With the default it is over within ``STOP_GRACE_S + 2 * KILL_GRACE_S``.
        """
        if not self._closed:
            self._closed = True
            self._exit_expected.set()
            self._end_child(timeout_s)
            self._stop.set()
            if self._reader.is_alive() and self._reader is not threading.current_thread():
                self._reader.join(KILL_GRACE_S)
            self._to_child.cancel_join_thread()
            self._events.close()
        return not self.is_alive()

    def _end_child(self, grace_s: float) -> None:
        proc = self._proc
        if self._child_alive() and grace_s > 0:
            self._to_child.put((_QUIT, (), {}))
            proc.join(grace_s)
        if self._child_alive():  # a child can be ended without harm to the viewer
            if grace_s > 0:
                log.warning("the worker process did not stop in time; terminating it")
            proc.terminate()
            proc.join(KILL_GRACE_S)
        if self._child_alive():
            proc.kill()
            proc.join(KILL_GRACE_S)

    # ---- the reader thread -------------------------------------------------------
    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._events.poll(POLL_S):
                    continue
                name, payload = self._events.recv()   # may wait for the rest of a message: see _watch_loop
            except (EOFError, OSError):
                # The child closed its end: it exited, or died mid-message (a torn message is
                # an end-of-file here too, never a wait for bytes that will not come).
                self._child_ended()
                return
            except Exception:  # a message that does not unpickle: skip it, keep reading
                log.exception("unreadable message from the worker")
                continue
            self._last_heard = time.monotonic()
            if name == "pulse":
                self._pulse = payload
            else:
                self._deliver(name, payload)

    def _deliver(self, name: str, payload) -> None:
        try:
            self._on_event(name, refreeze(payload))
        except Exception:  # never let the reader die
            log.exception("could not deliver %s from the worker", name)

    def _watch_loop(self) -> None:
        while not self._stop.wait(POLL_S) and self._reader.is_alive():
            self._watch()

    def _watch(self) -> None:
        """Compare the heartbeat with the patience of what the child does; say so on a change."""
        if self._closed or not self._child_alive():
            return
        now = time.monotonic()
        pulse = self._pulse
        heard = self._last_heard
        silent = now - (heard if heard is not None else self._started_at)
        verdict = None
        frozen_after = FROZEN_AFTER_S if self._stuck_after_s is None else max(self._stuck_after_s, 4 * POLL_S)
        if silent > (frozen_after if heard is not None else START_PATIENCE_S):
            verdict = Unresponsive(pulse.activity if pulse else "starting", pulse.model_file if pulse else None,
                                   silent, frozen=True)
        elif pulse is not None and pulse.busy_s > 0:
            patience = self._stuck_after_s if self._stuck_after_s is not None else pulse.patience_s
            if pulse.busy_s > patience:
                verdict = Unresponsive(pulse.activity, pulse.model_file, pulse.busy_s)
        # Said once per episode, except that a stuck child which then goes silent is said again as
        # frozen (a model can spend its patience in Python before reaching the native call that
        # freezes it): the user is told what it is now. Never back, so the message cannot flicker.
        if verdict is not None and (self._unresponsive is None or (verdict.frozen and not self._unresponsive.frozen)):
            self._unresponsive = verdict
            self._deliver("unresponsive", verdict)
        elif verdict is None and self._unresponsive is not None:
            self._unresponsive = None
            self._deliver("responsive", None)

    def _child_ended(self) -> None:
        self._proc.join(KILL_GRACE_S)   # it closed the pipe: it is ending, or already gone
        if self._child_alive():       # a child without its pipe can tell nobody anything: end it
            self._proc.kill()
            self._proc.join(KILL_GRACE_S)
        if self._exit_expected.is_set() or self._stop.is_set():
            return
        self._deliver("crashed", self.describe_end())

    def describe_end(self) -> str:
        """Why the child ended and what it was doing, for the user."""
        code = self._proc.exitcode
        pulse = self._pulse
        doing = ""
        if pulse is not None and pulse.activity not in ("idle", "starting"):
            doing = f" It was {pulse.activity}"
            doing += f" ({pulse.model_file})." if pulse.model_file and pulse.model_file not in pulse.activity else "."
        if self._stop_requested:
            return f"The training process was stopped at your request.{doing} It has been restarted."
        how = f"exit code {code}"
        if code is not None and code < 0:
            try:
                how += f", killed by signal {-code} ({signal.Signals(-code).name})"
            except ValueError:
                how += f", killed by signal {-code}"
            if -code in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT):
                how += ": a crash in native code"
        return (f"The training process stopped unexpectedly ({how}).{doing} It has been restarted; "
                "training since the last autosave is lost.")
