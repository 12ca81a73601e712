"""Fixtures every GUI test file shares."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import QCoreApplication, QEvent

from tests.gui.alive import ALIVE


@pytest.fixture(autouse=True)
def _views_are_deleted_at_teardown():
    """Delete each test's views (``tests.gui.alive.keep``) at its end, not whenever the garbage
    collector runs.

    qtbot keeps only weak references: a parentless view in a reference cycle (signal lambdas)
    was otherwise destroyed by a later test's GC pass, at a moment that depended on allocation
    counts, and crashed Qt mid-paint.
    """
    yield
    views, ALIVE[:] = list(ALIVE), []
    for v in views:
        v.close()
        v.deleteLater()
    if views:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
