"""The ONNX path stays torch-free (a process that only inspects ONNX models never loads PyTorch), and
the GUI never imports onnx or onnxruntime (they run in the process that owns the model)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.core.test_qt_free import _imports
from tests.extras import require

ROOT = Path(__file__).resolve().parents[2]


def test_core_onnx_imports_no_torch_and_gui_no_onnx():
    onnx_files = sorted((ROOT / "visualizer" / "core" / "onnx").glob("*.py"))
    assert onnx_files
    torchy = [(p.name, m) for p in onnx_files for m in _imports(p) if m == "torch" or m.startswith("torch.")]
    assert torchy == []
    gui = [(str(p.relative_to(ROOT)), m) for p in sorted((ROOT / "visualizer" / "gui").rglob("*.py"))
           for m in _imports(p) if m.split(".")[0] in ("onnx", "onnxruntime", "onnxscript")]
    assert gui == []


def test_inspecting_an_onnx_model_never_loads_torch(tmp_path):
    require("onnxruntime", "onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("GlobalAveragePool", ["r"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w])
    path = tmp_path / "tiny.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from visualizer.core.onnx import OnnxInspector
        from visualizer.core.snapshot import CaptureRequest
        with OnnxInspector({str(path)!r}) as inspector:
            snap = inspector.probe(CaptureRequest(layers=("*",), filter_layers=("conv",)), np.ones((1, 8, 8), np.float32))
        assert snap.layers and snap.filters and snap.activations
        print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"
