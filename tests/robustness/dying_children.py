"""Children for tests/robustness/test_worker_transport.py: an engine process that dies in the middle of
sending a message. Module level, so that a spawned child can import it."""
from __future__ import annotations

import ctypes
import os
import struct
import time

from visualizer.core.engine.messages import Pulse


def dies_mid_message(inbox, events, sample_limit, options) -> None:
    """Says what it does (a heartbeat), then writes the head of a 1 MB message and crashes natively."""
    events.send(("pulse", Pulse("training /models/net.py:Net", "/models/net.py", 0.1, 30.0)))
    payload = b"x" * 1_000_000
    # multiprocessing's framing: a 4-byte big-endian length, then the pickled bytes; only 1,000 of them come.
    os.write(events.fileno(), struct.pack("!i", len(payload)) + payload[:1000])
    ctypes.string_at(0)   # SIGSEGV, as a model's native code would


def freezes(inbox, events, sample_limit, options) -> None:
    """Says it trains, then holds the interpreter in native code forever: no heartbeat can come."""
    events.send(("pulse", Pulse("training /models/net.py:Net", "/models/net.py", 0.1, 30.0)))
    time.sleep(0.2)
    libc = ctypes.PyDLL(None)          # PyDLL: the GIL stays held during the call
    libc.sleep.argtypes = [ctypes.c_uint]
    while True:
        libc.sleep(1000)


def stuck_then_freezes(inbox, events, sample_limit, options) -> None:
    """Says it trains with no progress for 1.5 s and more (stuck in Python), for a second, then freezes as
    :func:`freezes` does."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        events.send(("pulse", Pulse("training /models/net.py:Net", "/models/net.py", 1.5 + time.monotonic() - t0,
                                    30.0)))
        time.sleep(0.1)
    libc = ctypes.PyDLL(None)
    libc.sleep.argtypes = [ctypes.c_uint]
    while True:
        libc.sleep(1000)


class _SlowToFinalize:
    """Stands for what makes the interpreter's teardown slow in a real engine (the garbage collection
    of its data sets and models: over a second on a slow machine)."""

    def __del__(self):
        time.sleep(3.0)


_kept_until_teardown = []


def slow_teardown(inbox, events, sample_limit, options) -> None:
    """The real engine process, holding something whose teardown takes 3 s."""
    from visualizer.core.engine.process import child_main
    _kept_until_teardown.append(_SlowToFinalize())
    child_main(inbox, events, sample_limit, options)
