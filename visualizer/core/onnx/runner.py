"""One onnxruntime session that returns every node's output, and runs that cannot hang.

Intermediate tensors are exposed by adding them to the graph's outputs (typed from shape
inference where it knows them; onnxruntime accepts an untyped output too). Graph
optimisations are off, so each output is what its node computes, not a fused kernel's. A run is
cancelled after ``limits.run_seconds`` through ``RunOptions.terminate`` from a timer thread,
which is always stopped and joined before the run returns.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from ..errors import LoadError, ModelError
from .deps import require
from .limits import OnnxLimits

# ONNX element types onnxruntime feeds as numpy floats.
_FLOAT_INPUTS = {1: np.float32, 10: np.float16, 11: np.float64}


def default_threads() -> int:
    """Respect OMP_NUM_THREADS when it is set (shared machines), else up to 4 cores."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, os.cpu_count() or 1))


def _typed_outputs(model) -> dict[str, object]:
    """ValueInfoProtos by name from shape inference; empty when it cannot run on this model."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
    except Exception:  # noqa: BLE001 - inference is only for typing the extra outputs
        return {}
    return {v.name: v for v in inferred.graph.value_info}


class GraphRunner:
    """Runs a checked ModelProto and returns the named tensors of one pass."""

    def __init__(self, model, path, input_name: str, names: list[str], limits: OnnxLimits,
                 threads: int | None = None):
        import onnx

        ort = require(path, "onnxruntime")
        self.path = path
        self.limits = limits
        exposed = onnx.ModelProto()
        exposed.CopyFrom(model)
        have = {o.name for o in exposed.graph.output}
        typed = _typed_outputs(model)
        for name in names:
            if name not in have:
                exposed.graph.output.append(typed.get(name) or onnx.ValueInfoProto(name=name))
                have.add(name)
        self.output_names = [o.name for o in exposed.graph.output]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            # bytes, never a path: every weight is inline, so onnxruntime opens no file the model names
            self._session = ort.InferenceSession(exposed.SerializeToString(), options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/NotImplemented types
            raise LoadError(path, f"onnxruntime cannot run this model ({_short(e)})",
                            "it may need a newer onnxruntime, or use an operator it does not implement") from e
        self._ort = ort
        self.input_name = input_name

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every exposed tensor for input ``x``; ModelError when the run fails or takes too long."""
        if self._session is None:
            raise ModelError("the ONNX model was closed")
        options = self._ort.RunOptions()
        options.log_severity_level = 3
        timed_out = threading.Event()

        def cancel():
            timed_out.set()
            options.terminate = True

        timer = threading.Timer(self.limits.run_seconds, cancel)
        timer.daemon = True
        timer.start()
        try:
            values = self._session.run(self.output_names, {self.input_name: x}, options)
        except Exception as e:  # onnxruntime's own error types: report, never crash
            if timed_out.is_set():
                raise ModelError(f"{self.path}: one run of the model took more than "
                                 f"{self.limits.run_seconds:g} s and was cancelled") from e
            raise ModelError(f"{self.path}: onnxruntime could not run the model on this input ({_short(e)})") from e
        finally:
            timer.cancel()
            timer.join()
        out = {}
        for name, v in zip(self.output_names, values):
            if isinstance(v, np.ndarray):
                out[name] = v
        return out

    def close(self) -> None:
        self._session = None


def input_dtype(value_info) -> type | None:
    """The numpy type an input (ValueInfoProto) takes, or None when it is not a float tensor."""
    return _FLOAT_INPUTS.get(int(value_info.type.tensor_type.elem_type))


def _short(e: BaseException, limit: int = 240) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
