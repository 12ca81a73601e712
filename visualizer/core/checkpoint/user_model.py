"""Build the user's own model from ``path/to/file.py:Name``.

This runs the user's Python file, so it happens only when they named it
explicitly (never because a checkpoint said so). The file is imported by path
under a unique module name, so two files both called ``model.py`` do not
collide and nothing on ``sys.path`` is shadowed.
"""
from __future__ import annotations

import importlib.util
import inspect
import itertools
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

import torch.nn as nn

from ..errors import LoadError

_counter = itertools.count()
# Imported user files live in sys.modules under this prefix (pickling and dataclasses need it).
USER_MODULE_PREFIX = "_cnnvis_user_"


def split_model_spec(spec: str) -> tuple[Path, str]:
    """``"dir/file.py:Name"`` -> (Path, "Name"); LoadError when the shape is wrong."""
    text = os.fspath(spec)
    file_part, sep, name = text.rpartition(":")
    if not sep or not file_part or not name.isidentifier():
        raise LoadError(text, "a model is given as path/to/file.py:Name",
                        "Name is an nn.Module class or a function that returns a model")
    return Path(file_part), name


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise LoadError(path, "model file not found", "check the path before ':'")
    mod_name = f"{USER_MODULE_PREFIX}{path.stem if path.stem.isidentifier() else 'model'}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise LoadError(path, "cannot import this file as Python", "it must be a .py file")
    module = importlib.util.module_from_spec(spec)
    # registered during execution so dataclasses/typing inside the file can find their module
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(mod_name, None)
        raise LoadError(path, f"syntax error on line {e.lineno}: {e.msg}",
                        "fix the file and load it again") from e
    except (Exception, SystemExit) as e:  # user code: report any failure (Ctrl+C still propagates)
        sys.modules.pop(mod_name, None)
        line = _line_in(path, e)
        raise LoadError(path, f"running the file raised {type(e).__name__}: {e}"
                        + (f" (line {line})" if line else ""),
                        "the file must define the model without side effects that fail") from e
    return module


def _line_in(path: Path, e: BaseException) -> int | None:
    for frame in reversed(traceback.extract_tb(e.__traceback__)):
        if Path(frame.filename) == path.resolve() or Path(frame.filename) == path:
            return frame.lineno
    return None


def _candidates(module: ModuleType) -> list[str]:
    """nn.Module classes and functions defined in the file itself (not imported into it)."""
    out = []
    for attr, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__ or attr.startswith("_"):
            continue
        if (inspect.isclass(obj) and issubclass(obj, nn.Module)) or inspect.isfunction(obj):
            out.append(attr)
    return out


def _missing_arguments(target, kwargs: dict) -> list[str]:
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.default is inspect.Parameter.empty and p.name not in kwargs
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def load_user_model(spec: str, **kwargs) -> nn.Module:
    """Import ``file.py`` and return ``Name(**kwargs)``: an nn.Module class or a factory function."""
    path, name = split_model_spec(spec)
    module = _import_file(path)
    try:
        return _build(module, path, name, kwargs)
    except BaseException:
        sys.modules.pop(module.__name__, None)  # a failed load leaves no module behind
        raise


def _build(module: ModuleType, path: Path, name: str, kwargs: dict) -> nn.Module:
    target = getattr(module, name, None)
    if target is None:
        found = _candidates(module)
        raise LoadError(path, f"has no {name!r}",
                        f"available: {', '.join(found)}" if found else "it defines no nn.Module class or function")
    is_class = inspect.isclass(target)
    if is_class and not issubclass(target, nn.Module):
        raise LoadError(path, f"{name} is a class but not a torch.nn.Module")
    if not is_class and not callable(target):
        raise LoadError(path, f"{name} is a {type(target).__name__}, not an nn.Module class or a function")
    missing = _missing_arguments(target, kwargs)
    if missing:
        what = f"{name}.__init__" if is_class else f"{name}()"
        raise LoadError(path, f"{what} needs arguments: {', '.join(missing)}",
                        "give them default values in the file, or add a function that takes no "
                        "arguments and returns the model")
    try:
        model = target(**kwargs)
    except SystemExit as e:   # sys.exit() in __init__: an error naming the file, never the end of the program
        line = _line_in(path, e)
        code = "" if e.code is None else repr(e.code)
        raise LoadError(path, f"building {name} called sys.exit({code})" + (f" (line {line})" if line else ""),
                        "a model must raise an exception instead") from e
    except Exception as e:
        line = _line_in(path, e)
        raise LoadError(path, f"building {name} raised {type(e).__name__}: {e}"
                        + (f" (line {line})" if line else "")) from e
    if not isinstance(model, nn.Module):
        raise LoadError(path, f"{name} returned a {type(model).__name__}, not a torch.nn.Module")
    return model
