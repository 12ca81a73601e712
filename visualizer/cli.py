"""The headless command line beside the GUI.

    cnn-visualizer [FILE]                      the desktop app (optionally opening FILE)
    cnn-visualizer train [MODEL] --dataset digits --epochs 3 --out run.pt
    cnn-visualizer models                      the zoo, one line each
    cnn-visualizer info MODEL                  layer table of any model, or what a run file holds
    cnn-visualizer render MODEL --out DIR      every view as PNG, no display (a run file: --step N)
    cnn-visualizer health MODEL [--dataset D] [--json]      dead, saturated, vanishing, exploding layers
    cnn-visualizer --version

Every command takes the same model arguments (``commands/model_arguments.py``); each
command is one module of ``visualizer/commands``. Errors print one line (no traceback)
and exit with status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

STARTED = time.perf_counter()  # when the entry point was imported: "window visible within 3 s" counts from here

COMMANDS = ("train", "models", "info", "render", "health")


def _command_modules() -> dict:
    from .commands import health, info, models, render, train
    return {"train": train, "models": models, "info": info, "render": render, "health": health}


def _parser(modules: dict) -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(prog="cnn-visualizer", description="Watch a convolutional neural network work.")
    p.add_argument("-V", "--version", action="version", version=f"cnn-visualizer {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        modules[name].add_parser(sub)
    return p


def _mistyped_command(word: str) -> str | None:
    """The one-line error for ``cnn-visualizer trian``: a bare word that is neither a command nor a file.

    Anything with a dot or a slash is taken as a file name (the app then reports a missing
    file in its window), so only a bare word can be a mistyped subcommand.
    """
    if word.startswith("-") or "." in word or os.sep in word or os.path.exists(word):
        return None
    import difflib
    close = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return (f"cnn-visualizer: error: '{word}' is not a command or a file; {hint}"
            f"commands: {', '.join(COMMANDS)} (cnn-visualizer --help)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        from . import __version__
        print(f"cnn-visualizer {__version__}")
        return 0
    if argv and argv[0] not in COMMANDS and (msg := _mistyped_command(argv[0])):
        print(msg, file=sys.stderr)
        return 2
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        from .gui.app import end_process, run_gui  # the desktop app is the default command
        end_process(run_gui(argv[0] if argv else None, argv))
    modules = _command_modules()
    args = _parser(modules).parse_args(argv)
    from .commands.errors import CliError, trust_refusal
    try:
        return modules[args.command].run(args)
    except KeyboardInterrupt:
        print("cnn-visualizer: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:   # none of ours: a user's model called sys.exit() (in its forward, say)
        from .core.engine.messages import describe_exit
        spec = getattr(args, "model", None) or ""
        model_file = spec.rpartition(":")[0] if ".py:" in spec else spec or None
        print(f"cnn-visualizer {args.command}: error: {describe_exit(e, model_file)}", file=sys.stderr)
        return 2
    except Exception as e:  # one clear line, never a traceback
        from .core.errors import LoadError, ModelError
        if not isinstance(e, (CliError, LoadError, ModelError, ValueError, OSError)):
            if os.environ.get("CNN_VISUALIZER_DEBUG"):
                raise
            msg = f"{type(e).__name__}: {e}"
        else:
            msg = str(e)
        from .core.errors import TrustRequired
        if isinstance(e, TrustRequired):
            msg = trust_refusal(e.path, msg)
        print(f"cnn-visualizer {args.command}: error: {msg}", file=sys.stderr)
        return 2
