"""Is there a screen to open a window on? Asked before the QApplication exists.

Without one, Qt's xcb platform plugin prints "could not connect to display" and
aborts the process (exit 134, a core dump on some systems) from inside the
QApplication constructor, where Python cannot catch it. So the app asks libxcb
itself first, the same library the plugin would use, and says what to do.
No Qt is imported here.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

NO_DISPLAY_HINT = ("run it on a desktop, set QT_QPA_PLATFORM=offscreen to draw off screen, or use the "
                   "headless commands (cnn-visualizer train, info, render)")


def _xcb_connects(display: str) -> bool | None:
    """Whether libxcb can reach ``display``; None when libxcb itself is not there to ask."""
    name = ctypes.util.find_library("xcb")
    if name is None:
        return None
    try:
        xcb = ctypes.CDLL(name)
    except OSError:
        return None
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = (ctypes.c_char_p, ctypes.c_void_p)
    xcb.xcb_connection_has_error.argtypes = (ctypes.c_void_p,)
    xcb.xcb_disconnect.argtypes = (ctypes.c_void_p,)
    conn = xcb.xcb_connect(display.encode(), None)
    try:
        return xcb.xcb_connection_has_error(conn) == 0
    finally:
        xcb.xcb_disconnect(conn)   # also required for a connection in the error state


def display_problem(environ=os.environ) -> str | None:
    """Why no window can be opened here, or None when one can (or we cannot tell)."""
    if not sys.platform.startswith("linux"):
        return None
    platform = environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None   # offscreen, wayland, vnc...: Qt reports its own problems for these
    if not platform and environ.get("WAYLAND_DISPLAY"):
        return None
    display = environ.get("DISPLAY", "")
    if not display:
        return "no display found (DISPLAY is not set)"
    if _xcb_connects(display) is False:
        return f"cannot connect to the display {display!r} (no X server answers there)"
    return None
