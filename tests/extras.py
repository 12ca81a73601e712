"""The optional extras ([onnx], [lightning]) are part of the test environment (./dev setup installs
them, CI runs them): a test that needs one fails, loudly and with the fix, rather than skipping."""
from __future__ import annotations

import importlib

import pytest


def require(module: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        pytest.fail(f"{module} is missing: the [{extra}] extra is part of the test environment; "
                    f'run ./dev setup (or pip install -e ".[{extra}]")  ({e})', pytrace=False)
