"""What to do when a test's prerequisite is missing: skip on a developer's machine, fail in CI.

CI runs on a machine kind that always has Xvfb (``./dev test`` installs it), so a missing
one there is a broken set-up, not a reason to skip; a skip would hide that the real-window
test never ran. ``.ci/run`` exports ``CNN_VISUALIZER_CI=1``; without it, a skip says why.
"""
from __future__ import annotations

import os

import pytest

CI_VARIABLE = "CNN_VISUALIZER_CI"


def in_ci() -> bool:
    return os.environ.get(CI_VARIABLE) == "1"


def missing(reason: str) -> None:
    """Skip the test for ``reason``, or fail it when running in CI."""
    if in_ci():
        pytest.fail(f"{reason}, and {CI_VARIABLE}=1: CI must have it (see ./dev need_xvfb)", pytrace=False)
    pytest.skip(reason)
