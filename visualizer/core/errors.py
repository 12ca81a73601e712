"""The one error type every loader raises.

A loader either returns a complete, valid value or raises :class:`LoadError`
naming the file, the problem and what to do about it. Callers (CLI, GUI) print
``str(err)`` as one line and keep whatever was loaded before.
"""
from __future__ import annotations

import os


class LoadError(Exception):
    """A file (model, image, dataset, settings) could not be used."""

    def __init__(self, path: str | os.PathLike | None, problem: str, hint: str = ""):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        self.hint = hint
        super().__init__(self.message())

    def message(self) -> str:
        where = f"{self.path}: " if self.path else ""
        tail = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.problem}{tail}"


class TrustRequired(LoadError):
    """The file can only be loaded by running code from it; ask the user first.

    ``info`` carries what a trust dialog shows (path, size, sha256, globals).
    """

    def __init__(self, path, problem: str, info=None, hint: str = ""):
        super().__init__(path, problem, hint or "open it only if you trust where it came from")
        self.info = info


class ModelError(Exception):
    """A model cannot be used as asked (wrong forward signature, no input size fits...)."""
