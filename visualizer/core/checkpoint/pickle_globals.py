"""List the globals a pickle would import, without running it.

A pickle runs code only through the callables it names (GLOBAL / STACK_GLOBAL
opcodes) and then calls with REDUCE/NEWOBJ/BUILD. Reading the opcode stream
with ``pickletools.genops`` executes nothing, so this is safe on hostile
files. torch's own ``get_unsafe_globals_in_checkpoint`` only understands
protocol-2 GLOBAL and refuses TorchScript/legacy files; this scanner also
resolves STACK_GLOBAL (protocol 4+) through the memo.
"""
from __future__ import annotations

import io
import pickletools

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE",
               "SHORT_BINSTRING", "BINSTRING", "STRING"}
_MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}
_MEMO_GET = {"GET", "BINGET", "LONG_BINGET"}


def globals_in_pickle(data: bytes | io.BufferedIOBase) -> tuple[set[str], bool]:
    """Return ``({"module.name", ...}, complete)`` for the first pickle in ``data``.

    ``complete`` is False when the stream was damaged or used an opcode whose
    target cannot be resolved statically: callers must then treat the file as
    unsafe rather than assume it names nothing.
    """
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    found: set[str] = set()
    memo: dict[int, object] = {}
    stack_strings: list[object] = []  # recent pushes; only strings matter for STACK_GLOBAL
    memo_counter = 0
    complete = True
    try:
        for op, arg, _pos in pickletools.genops(stream):
            name = op.name
            if name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                found.add(f"{module}.{attr}")
                stack_strings.append(None)
            elif name == "STACK_GLOBAL":
                if len(stack_strings) >= 2 and all(isinstance(s, str) for s in stack_strings[-2:]):
                    found.add(f"{stack_strings[-2]}.{stack_strings[-1]}")
                else:
                    found.add("<unresolved STACK_GLOBAL>")
                    complete = False
                stack_strings.append(None)
            elif name in _STRING_OPS:
                stack_strings.append(arg if isinstance(arg, str) else arg.decode("latin-1", "replace")
                                     if isinstance(arg, bytes) else str(arg))
            elif name in _MEMO_PUT:
                memo[int(arg)] = stack_strings[-1] if stack_strings else None
            elif name == "MEMOIZE":
                memo[memo_counter] = stack_strings[-1] if stack_strings else None
                memo_counter += 1
            elif name in _MEMO_GET:
                stack_strings.append(memo.get(int(arg)))
            elif name in ("INST", "OBJ"):
                if name == "INST":
                    module, _, attr = str(arg).partition(" ")
                    found.add(f"{module}.{attr}")
                else:
                    found.add("<OBJ opcode>")
                    complete = False
                stack_strings.append(None)
            elif name == "STOP":
                break
            else:
                stack_strings.append(None)
            # PUT/MEMOIZE do not push; keep the list short, only the top two matter.
            if name in _MEMO_PUT or name == "MEMOIZE":
                continue
            if len(stack_strings) > 64:
                del stack_strings[:-8]
    except Exception:  # noqa: BLE001 - damaged stream: whatever was found so far, flagged incomplete
        complete = False
    return found, complete
