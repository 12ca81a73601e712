"""Which classes a record may hold, and what each of their fields accepts.

A record names its dataclasses by a plain string. Decoding looks that string up
here and nowhere else (no import by name, no pickle), so a record can only ever
build the frozen schema classes of ``visualizer.core.snapshot`` and
``visualizer.core.model_info``, plus whatever a caller registered on purpose.

Each registered class gets a field table built once from its dataclass fields
and type hints: decoding checks every value against the field's annotation
(``np.ndarray | None``, ``tuple[int, ...]``, ``tuple[LayerCapture, ...]``...), so
a foreign record that puts a string where a view expects an array fails here,
with the field's name, instead of inside a view. Everything is derived from the
dataclasses themselves: when the snapshot schema changes, nothing here changes.
"""
from __future__ import annotations

import dataclasses
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Check = Callable[[object], bool]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    required: bool            # no default: a record without it cannot be decoded
    check: Check | None       # None: any record value is accepted
    expected: str             # the annotation as written, for error messages


@dataclass(frozen=True)
class RecordType:
    name: str
    cls: type
    fields: dict[str, FieldSpec]


_lock = threading.Lock()
_by_name: dict[str, RecordType] = {}
_by_class: dict[type, RecordType] = {}
_builtins_loaded = False


def _builtin_modules():
    # Imported here, not at module level: the registry must not pull the schema
    # in before someone asks for it (and the schema modules are numpy-only).
    from visualizer.core import model_info, snapshot
    return (snapshot, model_info)


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _lock:
        if _builtins_loaded:
            return
        for module in _builtin_modules():
            for obj in vars(module).values():
                if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                    _add(obj, obj.__qualname__)
        _builtins_loaded = True


def register_record_type(cls: type, name: str | None = None) -> type:
    """Allow instances of the dataclass ``cls`` in records, under ``name`` (its qualified name).

    Usable as a decorator. Registering the same class twice is harmless; a
    different class under a taken name is refused (records name types by string).
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass; only dataclasses can be record types")
    _load_builtins()
    with _lock:
        _add(cls, name or cls.__qualname__)
    return cls


def _add(cls: type, name: str) -> None:
    known = _by_name.get(name)
    if known is not None:
        if known.cls is cls:
            return
        raise ValueError(f"record type name {name!r} is already taken by {known.cls.__module__}.{known.cls.__qualname__}")
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError, AttributeError):
        hints = {}  # unresolvable annotations: accept any record value for those fields
    fields = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue  # derived state (ModelInfo._index) is rebuilt by the class itself
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        tp = hints.get(f.name)
        fields[f.name] = FieldSpec(f.name, required, None if tp is None else checker(tp),
                                   f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type)))
    rt = RecordType(name, cls, fields)
    _by_name[name] = rt
    _by_class[cls] = rt


def type_by_name(name: str) -> RecordType | None:
    _load_builtins()
    return _by_name.get(name)


def type_of(obj: object) -> RecordType | None:
    """The record type of ``obj``'s exact class (a subclass is not its parent's record type)."""
    _load_builtins()
    return _by_class.get(type(obj))


def registered_names() -> tuple[str, ...]:
    _load_builtins()
    return tuple(sorted(_by_name))


# ---------------------------------------------------------------------- annotation → check


def checker(tp) -> Check | None:
    """A predicate for values of annotation ``tp``, or None where anything goes (Any, unknown forms)."""
    if tp is typing.Any:
        return None
    if tp is None or tp is type(None):
        return lambda v: v is None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        subs = [checker(a) for a in args]
        if any(s is None for s in subs):
            return None
        return lambda v: any(s(v) for s in subs)
    if tp is float:
        return lambda v: isinstance(v, (float, int))   # an int is a valid float value
    if tp is bool:
        return lambda v: isinstance(v, bool)
    if tp is int:
        return lambda v: isinstance(v, int)
    if tp is str:
        return lambda v: isinstance(v, str)
    if tp is np.ndarray or origin is np.ndarray:
        return lambda v: isinstance(v, np.ndarray)
    if origin is tuple:
        return _tuple_checker(args)
    if origin is list:
        item = checker(args[0]) if args else None
        return lambda v: isinstance(v, list) and (item is None or all(item(x) for x in v))
    if origin is dict:
        val = checker(args[1]) if len(args) == 2 else None
        return lambda v: isinstance(v, dict) and (val is None or all(val(x) for x in v.values()))
    if isinstance(tp, type):
        return lambda v: isinstance(v, tp)
    return None


def _tuple_checker(args) -> Check:
    if len(args) == 2 and args[1] is Ellipsis:
        item = checker(args[0])
        if item is None:
            return lambda v: isinstance(v, tuple)
        return lambda v: isinstance(v, tuple) and all(item(x) for x in v)
    if args == ((),):     # tuple[()]
        return lambda v: v == ()
    subs = [checker(a) for a in args]
    return lambda v: (isinstance(v, tuple) and len(v) == len(subs)
                      and all(s is None or s(x) for s, x in zip(subs, v)))
