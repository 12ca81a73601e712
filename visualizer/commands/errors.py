"""How a command fails: one line, no traceback, exit status 2."""
from __future__ import annotations


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def trust_refusal(path, message: str) -> str:
    """The command line has no confirmation to give: say where one is."""
    return (f"{message}; the command line never runs code from a file: open it in the app "
            f"(cnn-visualizer {path}), which shows what it holds and asks first")
