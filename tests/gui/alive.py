"""Views a test made, deleted when it ends (the autouse fixture in ``conftest.py``)."""
from __future__ import annotations

ALIVE: list = []


def keep(view):
    """Delete ``view`` at the end of the test that made it; returns it."""
    ALIVE.append(view)
    return view
