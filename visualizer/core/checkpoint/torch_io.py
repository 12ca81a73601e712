"""The only two places that call ``torch.load``, so every failure becomes a LoadError.

Truncated or random files raise a zoo of exception types (OSError, EOFError,
UnpicklingError, RuntimeError, KeyError, ValueError, struct.error...), so both
entry points catch broadly and name the file. ``map_location="cpu"`` is always
passed: a checkpoint saved on a GPU must open on a machine without one.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

from ..errors import LoadError

_WEIGHTS_ONLY_REFUSAL = "Weights only load failed"


class _NeedsTrust(LoadError):
    """The weights-only unpickler met a global it will not import: only a trusted load can read it."""

    needs_trust = True


def load_weights_only(source: Path | bytes, path: Path | None = None, *, mmap: bool = False):
    """``torch.load(weights_only=True, map_location="cpu")``: runs no code from the file.

    ``mmap`` (zip files only) maps tensors instead of reading them: for looking, not keeping.
    """
    import torch

    name = path if path is not None else source
    try:
        f = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        return torch.load(f, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        if _WEIGHTS_ONLY_REFUSAL in str(e):
            raise _NeedsTrust(name, "the file contains Python objects beyond tensors (it imports code)",
                              "load it only if you trust its source") from e
        raise LoadError(name, f"the file is damaged or not a PyTorch file ({_short(e)})",
                        "use an undamaged copy") from e
    except MemoryError as e:
        raise LoadError(name, "not enough memory to load the file") from e
    except Exception as e:
        raise LoadError(name, f"the file is damaged or not a PyTorch file ({type(e).__name__}: {_short(e)})",
                        "it may be truncated; use an undamaged copy") from e


def load_trusted(source: Path | bytes, path: Path | None = None):
    """``torch.load(weights_only=False)``: runs code from the file. Call only after the user trusted it."""
    import torch

    name = path if path is not None else source
    try:
        f = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        return torch.load(f, map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError, ImportError) as e:
        raise LoadError(name, f"the pickled model refers to code that is not available here ({_short(e)})",
                        "its class must be importable; or save its state_dict and load that with "
                        "the model given as file.py:ClassName") from e
    except Exception as e:
        raise LoadError(name, f"loading the pickled object failed ({type(e).__name__}: {_short(e)})") from e


def _short(e: BaseException, limit: int = 200) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
