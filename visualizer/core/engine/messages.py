"""What the engine tells its viewer, as plain data (no torch): it crosses threads and processes.

Everything here is a frozen dataclass of numpy arrays (read-only), strings, numbers and
tuples, or a function on such values, so the window's process can receive it without
importing torch. The snapshot records themselves are in ``core/snapshot.py``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LoadError, ModelError
from ..model_info import ModelInfo


@dataclass(frozen=True)
class DataInfo:
    """What the viewer may know about the prepared dataset (plain data, read-only arrays)."""

    name: str
    spec: str                   # what load_dataset was given (builtin name or path)
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    n_train: int
    n_val: int
    labels: np.ndarray          # (n_val,) int64 labels of the probe split, to pick by class
    gallery: np.ndarray         # (G, C, H, W) uint8 first G probe-split images as the model sees them
    augment: tuple = ()
    native_shape: tuple[int, int, int] = (0, 0, 0)  # the dataset's own (C, H, W) before resizing


@dataclass(frozen=True)
class LoadedModel:
    """What the engine tells the viewer about a model it now owns."""

    info: ModelInfo
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    arch: str | None = None
    arch_options: tuple[tuple[str, Any], ...] = ()
    source: str | None = None
    meta: tuple[tuple[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()
    probeable: bool = True
    trusted: bool = False                      # loaded only after the user trusted the file
    dataset: str | None = None                 # dataset the engine prepared for it
    dataset_size: int = 0                      # samples in the probe split
    training_refusal: str = ""                 # why this model cannot be trained here (an ONNX file); "": it can
    mean: tuple[float, ...] = ()               # the normalisation its inputs get (after scaling to [0, 1])
    std: tuple[float, ...] = ()


@dataclass(frozen=True)
class InputFormat:
    """The open model's inputs now get this normalisation, and its classes these names (the user's word)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class TrustRequest:
    """A file that can only be loaded by running its code: ask the user, then retry with trust=<sha256>."""

    path: str
    info: Any                   # checkpoint.ModelFileInfo (path, size, sha256, unsafe globals), or None
    message: str
    load_kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class ArchitectureRequest:
    """Bare weights: ask which architecture (a zoo name or file.py:Name), then retry with arch=/model_spec=."""

    path: str
    message: str
    load_kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Pulse:
    """The engine process's heartbeat (every ``process.PULSE_INTERVAL_S``): what its engine thread is doing.

    ``busy_s`` counts from the last sign of progress (a training step, an event, a command
    begun), 0 when idle; ``patience_s`` is how long this activity may go without one before
    the viewer calls the engine unresponsive (longer for a data set than for a step).
    """

    activity: str                     # "training net.py:Net", "opening /data/big.pt", "idle"
    model_file: str | None = None     # the file whose code runs (a model file, a data set folder)
    busy_s: float = 0.0
    patience_s: float = 30.0


@dataclass(frozen=True)
class Unresponsive:
    """The viewer's verdict on a living engine process that shows no progress (``frozen``: it sends nothing
    at all, e.g. native code holding the interpreter; else its engine thread is stuck in ``activity``)."""

    activity: str
    model_file: str | None
    seconds: float
    frozen: bool = False

    def describe(self) -> str:
        what = f"{self.activity} ({self.model_file})" if self.model_file and self.model_file not in self.activity \
            else self.activity
        if self.frozen:
            return f"The training process has sent nothing for {self.seconds:.0f} s while {what}."
        return f"The training process has made no progress for {self.seconds:.0f} s while {what}."


@dataclass(frozen=True)
class RunStarted:
    """A training run began: where it is recorded (a ``.cnnviz`` run file) and autosaved (None: not kept)."""

    run_file: str | None
    autosave: str | None
    resumed_from_step: int = 0


@dataclass(frozen=True)
class AnalysisResult:
    """The answer to an analysis request (``analysis.py``): its record, or why there is none."""

    kind: str
    request_id: int
    record: Any = None          # a torch-free record of explain/, health/ or channels/
    error: str | None = None


@dataclass(frozen=True)
class AnalysisProgress:
    """A long analysis (top patches, health) on its way: ``done`` of ``total``."""

    kind: str
    request_id: int
    done: int
    total: int


def refreeze(obj, _depth: int = 0):
    """Arrays come out of pickling writeable: make them read-only again, as the schema says."""
    if _depth > 6:
        return obj
    if isinstance(obj, np.ndarray):
        obj.setflags(write=False)
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            refreeze(item, _depth + 1)
    elif hasattr(obj, "__dataclass_fields__"):
        for name in obj.__dataclass_fields__:
            refreeze(getattr(obj, name, None), _depth + 1)
    return obj


def is_out_of_memory(exc: BaseException) -> bool:
    """Python's MemoryError, torch's OutOfMemoryError, or a backend's "out of memory" RuntimeError.

    By name, not by class: this module must not import torch.
    """
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "out of memory" in str(exc).lower())


def describe_model(model: LoadedModel) -> str:
    """One line for the status bar: "lenet5 (1x32x32 input, 10 classes, 61,706 parameters)"."""
    name = model.arch or (os.path.basename(model.source) if model.source else "model")
    c, h, w = model.input_shape
    total = getattr(model.info, "total_params", None)
    params = f", {total:,} parameters" if isinstance(total, int) else ""
    return f"{name} ({c}x{h}x{w} input, {len(model.class_names)} classes{params})"


def describe_error(exc: BaseException, batch_size: int | None = None, model_file: str | None = None) -> str:
    """One readable message for the user; out-of-memory gets a concrete way out; a ``sys.exit()``
    in the model's code names ``model_file`` (it would otherwise end the engine without a word)."""
    if isinstance(exc, SystemExit):
        return describe_exit(exc, model_file)
    text = str(exc) or type(exc).__name__
    if is_out_of_memory(exc):
        smaller = f" (for example {max(1, batch_size // 2)})" if batch_size else ""
        now = f" at batch size {batch_size}" if batch_size else ""
        return f"Out of memory{now}. Try a smaller batch size{smaller} or a smaller model."
    if isinstance(exc, (LoadError, ModelError, ValueError)):
        return text
    return f"{type(exc).__name__}: {text}"


def describe_exit(exc: SystemExit, model_file: str | None) -> str:
    """``net.py: the model's code called sys.exit(3) (line 12); ...``: one message naming the file."""
    return f"{model_file or 'the model'}: {exit_problem(exc, model_file)}; a model must raise an exception instead"


def exit_problem(exc: SystemExit, model_file: str | None) -> str:
    """``the model's code called sys.exit(3) (line 12)``, with the line in ``model_file`` if the traceback has it."""
    import os
    import traceback
    code = "" if exc.code is None else repr(exc.code)
    line = None
    if model_file:
        real = os.path.realpath(model_file)
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if os.path.realpath(frame.filename) == real:
                line = frame.lineno
                break
    return f"the model's code called sys.exit({code})" + (f" (line {line})" if line else "")
