"""Package attributes that import their module on first use (PEP 562).

The window's process imports torch-free submodules of packages whose other modules
need torch (``checkpoint.trust``, ``datasets.builtin``, ``architectures.catalog``).
Importing a submodule runs its package's ``__init__`` first, so those ``__init__``
files must not import everything eagerly: each lists its public names and the module
that defines them, and a name is imported when it is first used.
"""
from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a public name to its relative module.

    A name may not be its own module's name: importing a submodule sets the package's attribute
    of that name to the module, which would then hide the name for good.
    """
    clashes = sorted(n for n, m in exports.items() if m.rsplit(".", 1)[-1] == n)
    if clashes:
        raise ValueError(f"{package}: {', '.join(clashes)} would be hidden by the module of the same name")

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
