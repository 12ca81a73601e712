"""Return the GUI process's big temporary arrays to the OS instead of keeping them.

Every frame, the live plots build arrays that grow with the run (a history copy,
a smoothed curve, pyqtgraph's display buffers), use them once and free them. glibc
raises its mmap threshold to the largest block freed so far, so after the first few
frames these blocks come from the heap instead of fresh mappings; ever larger
ones cannot reuse the holes the smaller ones left and the heap only grows. Measured
over 3 minutes of training with every view open (bench/soak.py): the GUI process
grew 13.3 MB with the default, 6.8 MB with a fixed 256 KiB threshold.

Only for a process that does not train: torch's big tensors would then each cost
a fresh mapping and its page faults, every step.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3          # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 256 * 1024


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Blocks of ``nbytes`` and more always get their own mapping; True if applied (glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, int(nbytes)))
    except (OSError, AttributeError):   # not glibc (musl has no mallopt): keep the default
        return False
