"""The parent's handle on the engine process notices a child that dies in the middle of a message,
and one that is alive but frozen, at once and naming what it was doing. Real children, real signals.

(The end-to-end cases, user models that segfault, loop or freeze in the window, are in
tests/gui/test_worker_recovery.py.)
"""
from __future__ import annotations

import threading
import time

import psutil

from tests.robustness import dying_children
from visualizer.core.engine.process import EngineProcess


class Recorder:
    def __init__(self):
        self.events: list = []
        self.arrived = threading.Condition()

    def __call__(self, name, payload):
        with self.arrived:
            self.events.append((time.monotonic(), name, payload))
            self.arrived.notify_all()

    def wait_for(self, name: str, timeout: float):
        with self.arrived:
            self.arrived.wait_for(lambda: any(n == name for _, n, _ in self.events), timeout)
        return next(((t, p) for t, n, p in self.events if n == name), None)


def started(child_main, **kwargs) -> tuple[EngineProcess, Recorder]:
    """An engine process whose child runs ``child_main`` (a module-level function, so that it spawns),
    started, with a recorder of what it delivers."""
    process_class = type("Child", (EngineProcess,), {"child_main": staticmethod(child_main)})
    got = Recorder()
    proc = process_class(got, **kwargs)
    proc.start()
    return proc, got


def test_a_child_that_crashes_in_the_middle_of_a_message_is_reported_at_once():
    # With a queue whose pipe the parent also held open, the reader waited forever for the rest of
    # the message: the crash was never reported, and closing the window waited for the reader.
    proc, got = started(dying_children.dies_mid_message)
    try:
        found = got.wait_for("crashed", timeout=60)
        assert found is not None, got.events
        _, text = found
        assert "signal 11 (SIGSEGV)" in text and "native code" in text
        assert "/models/net.py" in text          # what it was doing, from its last heartbeat
        assert not psutil.pid_exists(proc.pid) or psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE
    finally:
        t0 = time.monotonic()
        assert proc.shutdown()
        assert time.monotonic() - t0 < 2.0       # nothing left to wait for


def test_a_frozen_child_is_called_unresponsive_and_stop_now_ends_it_within_5_seconds():
    proc, got = started(dying_children.freezes, stuck_after_s=1.0)
    try:
        found = got.wait_for("unresponsive", timeout=60)
        assert found is not None, got.events
        _, why = found
        assert why.frozen and why.model_file == "/models/net.py" and "sent nothing" in why.describe()
        assert psutil.Process(proc.pid).is_running()
        t0 = time.monotonic()
        proc.stop_now()                          # the user's "Stop the training process"
        found = got.wait_for("crashed", timeout=10)
        gone = time.monotonic() - t0
        assert found is not None and "stopped at your request" in found[1]
        assert gone < 5.0, gone
        # The pipe's end-of-file can come a moment before the kernel has the process dead: it
        # must be gone within the same 5 s.
        proc._proc.join(max(0.0, 5.0 - (time.monotonic() - t0)))
        assert not proc._proc.is_alive()
    finally:
        assert proc.shutdown()


def test_a_stuck_child_that_then_freezes_is_said_again_as_frozen_and_only_once():
    # A model can spend the stuck patience in Python (a slow set-up) before the native call that
    # freezes it: the user was told "no progress" and never that it now sends nothing at all.
    proc, got = started(dying_children.stuck_then_freezes, stuck_after_s=1.0)
    try:
        with got.arrived:
            got.arrived.wait_for(lambda: sum(n == "unresponsive" for _, n, _ in got.events) >= 2, 60)
        time.sleep(1.0)                          # a few more looks at the silent child: nothing more is said
        said = [p for _, n, p in got.events if n == "unresponsive"]
        assert [why.frozen for why in said] == [False, True], got.events
        assert "made no progress" in said[0].describe() and "sent nothing" in said[1].describe()
        assert all(why.model_file == "/models/net.py" for why in said)
        assert not any(n == "responsive" for _, n, _ in got.events)
    finally:
        proc.stop_now()
        assert proc.shutdown()


def test_the_engine_process_ends_cleanly_without_waiting_for_the_interpreters_teardown(caplog):
    # The child closed its pipe, then spent its teardown collecting the engine's objects (over a
    # second on a slow machine); the parent gives a child that closed its pipe 1 s, so on most
    # closings mid-training there it was killed, and the window logged that it did not stop in time.
    proc, got = started(dying_children.slow_teardown)
    proc.call("no_such_command")              # answered once the engine is up and listening
    assert got.wait_for("failed", timeout=60) is not None
    t0 = time.monotonic()
    assert proc.shutdown()
    took = time.monotonic() - t0
    assert proc._proc.exitcode == 0, proc._proc.exitcode       # not terminated (-15) or killed (-9)
    assert took < 2.0, took
    assert "did not stop in time" not in caplog.text
    assert not any(n == "crashed" for _, n, _ in got.events), got.events
