"""Hostile, damaged and oversized ONNX files: one clear LoadError naming the file, nothing run or read
that should not be, and a model already open keeps working."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn

from tests.extras import require
from visualizer.core.checkpoint import inspect_model_file, load_model
from visualizer.core.errors import LoadError
from visualizer.core.onnx import OnnxInspector, OnnxLimits, load_onnx
from visualizer.core.snapshot import CaptureRequest

onnx = require("onnx", "onnx")
require("onnxruntime", "onnx")
TensorProto, helper, numpy_helper = onnx.TensorProto, onnx.helper, onnx.numpy_helper

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


@pytest.fixture(scope="module")
def exported_folder(tmp_path_factory):
    """A folder holding small.onnx and the external weights file torch.onnx.export writes beside it."""
    folder = tmp_path_factory.mktemp("exported")
    torch.manual_seed(0)
    torch.onnx.export(Small().eval(), (torch.zeros(1, 1, 8, 8),), str(folder / "small.onnx"), dynamo=True,
                      verbose=False, external_data=True)
    return folder


@pytest.fixture
def small(tmp_path, exported_folder):
    """A private copy of the exported model (and its weights file) to damage."""
    folder = tmp_path / "models"
    shutil.copytree(exported_folder, folder)
    return folder / "small.onnx"


@pytest.fixture
def already_open(exported_folder):
    """A model open in the app: a failed load must leave it working."""
    inspector = OnnxInspector(exported_folder / "small.onnx")
    yield inspector
    inspector.close()


def refused(path, already_open, fragment, **kwargs) -> LoadError:
    with pytest.raises(LoadError) as info:
        load_onnx(path, **kwargs)
    err = info.value
    assert str(path) in str(err) and fragment in str(err), str(err)
    snap = already_open.probe(CaptureRequest(layers=("*",)), np.ones((1, 8, 8), np.float32))
    assert snap.probabilities.size == 3 and len(snap.layers) == len(already_open.info.layers)
    return err


def with_external_location(path, location):
    """Rewrite every external-data location of ``path`` (parsing it as data, loading no weights)."""
    model = onnx.load(str(path), load_external_data=False)
    n = 0
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = location
                n += 1
    assert n > 0, "the exporter wrote no external data"
    onnx.save(model, str(path))


def saved(model, path):
    onnx.save(model, str(path))
    return path


def conv_graph(domain_op=None, inputs=1, rank=4, convs=1, channels=1, size=8):
    """A small graph built with onnx.helper: ``convs`` 3x3 convs (+ a custom-domain op if asked)."""
    rng = np.random.default_rng(0)
    nodes, inits, last = [], [], "x"
    for i in range(convs):
        w = numpy_helper.from_array(rng.standard_normal((channels, channels, 3, 3)).astype(np.float32), f"w{i}")
        inits.append(w)
        nodes.append(helper.make_node("Conv", [last, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1], name=f"conv{i}"))
        last = f"c{i}"
    opsets = [helper.make_opsetid("", 17)]
    if domain_op:
        domain, op = domain_op
        nodes.append(helper.make_node(op, [last], ["custom"], domain=domain, name="custom"))
        opsets.append(helper.make_opsetid(domain, 1))
        last = "custom"
    nodes.append(helper.make_node("Flatten", [last], ["y"]))
    shape = [1, channels, size, size][:rank] if rank <= 4 else [1, channels, size, size, 2]
    ins = [helper.make_tensor_value_info(f"x{'' if i == 0 else i}", TensorProto.FLOAT, shape) for i in range(inputs)]
    graph = helper.make_graph(nodes, "g", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None])], inits)
    return helper.make_model(graph, opset_imports=opsets)


# --- external data ---------------------------------------------------------------------------------

def test_external_data_beside_the_model_loads(small):
    bundle = load_onnx(small)
    assert bundle.meta["external_data"] == "small.onnx.data"
    assert any("small.onnx.data beside the model" in w for w in bundle.warnings)


def test_external_data_outside_the_folder_is_refused(small, already_open):
    shutil.move(small.parent / "small.onnx.data", small.parent.parent / "small.onnx.data")
    with_external_location(small, "../small.onnx.data")
    err = refused(small, already_open, "points outside the model's folder ('../small.onnx.data')")
    assert "refused unread" in err.hint


def test_external_data_absolute_path_is_refused(small, already_open, tmp_path):
    with_external_location(small, str(tmp_path / "elsewhere.data"))
    refused(small, already_open, "points to the absolute path")


def test_external_data_symlink_leading_outside_is_refused(small, already_open, tmp_path):
    outside = tmp_path / "secret.data"
    shutil.move(small.parent / "small.onnx.data", outside)
    (small.parent / "small.onnx.data").symlink_to(outside)     # the location looks local; the file is not
    refused(small, already_open, "points outside the model's folder")


def test_external_data_missing_or_truncated(small, already_open):
    data = small.parent / "small.onnx.data"
    raw = data.read_bytes()
    data.write_bytes(raw[: len(raw) // 2])
    refused(small, already_open, "reaches past the end of 'small.onnx.data'")
    data.unlink()
    refused(small, already_open, "external weights file 'small.onnx.data' is missing")


# --- what the graph uses -----------------------------------------------------------------------------

def test_custom_operator_domain_is_refused(tmp_path, already_open):
    p = saved(conv_graph(domain_op=("com.example.vision", "FancyPool")), tmp_path / "custom.onnx")
    err = refused(p, already_open, "custom operators from 'com.example.vision' (FancyPool)")
    assert "standard ONNX operators" in err.hint


def test_inputs_that_are_not_one_image_are_refused(tmp_path, already_open):
    refused(saved(conv_graph(inputs=2), tmp_path / "two.onnx"), already_open, "takes 2 inputs")
    refused(saved(conv_graph(rank=3), tmp_path / "seq.onnx"), already_open, "has 3 dimensions, not 4")


# --- sizes -----------------------------------------------------------------------------------------

def test_oversized_models_are_refused_by_each_limit(small, already_open, tmp_path):
    size = small.stat().st_size
    refused(small, already_open, f"over the limit of {size - 1:,}", limits=OnnxLimits(max_file_bytes=size - 1))
    refused(small, already_open, "the graph has", limits=OnnxLimits(max_nodes=2))
    err = refused(small, already_open, "over the limit of 1,000", limits=OnnxLimits(max_initializer_bytes=1000))
    assert "the weights take" in err.problem
    refused(small, already_open, "bytes of layer outputs", limits=OnnxLimits(max_capture_bytes=100))


def test_weights_claimed_by_dims_count_even_without_data(tmp_path, already_open):
    model = conv_graph()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    del w.float_data[:]
    w.dims[:] = [100_000, 100_000, 3, 3]      # 360 GB claimed by a file of a few hundred bytes
    p = tmp_path / "claims.onnx"
    p.write_bytes(model.SerializeToString())
    refused(p, already_open, "the weights take 360,000,000,000 bytes")


def test_a_run_that_takes_too_long_is_cancelled(tmp_path, already_open):
    p = saved(conv_graph(convs=12, channels=32, size=192), tmp_path / "slow.onnx")
    err = refused(p, already_open, "cancelled", limits=OnnxLimits(run_seconds=0.02))
    assert "took more than 0.02 s" in err.problem


# --- damaged and foreign files -------------------------------------------------------------------------

def test_truncated_file(small, already_open):
    data = small.read_bytes()
    small.write_bytes(data[: len(data) // 2])
    refused(small, already_open, "not an ONNX model, or a truncated one")


def test_files_that_are_not_onnx(tmp_path, already_open):
    pt = tmp_path / "weights.onnx"
    torch.save(Small().state_dict(), pt)                   # a PyTorch file with the wrong name
    refused(pt, already_open, "not an ONNX model")
    text = tmp_path / "notes.onnx"
    text.write_text("these are my notes about the model\n" * 20)
    refused(text, already_open, "not an ONNX model")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    refused(empty, already_open, "the file is empty")
    refused(tmp_path / "absent.onnx", already_open, "file not found")


def test_the_checkpoint_loader_points_onnx_files_to_their_loader(small):
    with pytest.raises(LoadError) as err:
        load_model(small)
    assert "an ONNX model, not a PyTorch model file" in str(err.value) and "cnn-visualizer[onnx]" in err.value.hint
    assert inspect_model_file(small).format == "unknown"


MISSING_EXTRA = textwrap.dedent("""
    import sys
    sys.modules[{module!r}] = None          # as if the package were not installed: importing it fails
    from visualizer.core.errors import LoadError
    from visualizer.core.onnx import load_onnx
    try:
        load_onnx({path!r})
    except LoadError as e:
        print(e)
""")


@pytest.mark.parametrize("module", ["onnx", "onnxruntime"])
def test_missing_extra_names_it(small, module):
    code = MISSING_EXTRA.format(module=module, path=str(small))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert str(small) in run.stdout and f"needs the {module} package" in run.stdout
    assert 'pip install "cnn-visualizer[onnx]"' in run.stdout


def test_cli_info_error_is_one_line(tmp_path, capsys):
    from visualizer.cli import main

    p = tmp_path / "cut.onnx"
    p.write_bytes(b"\x08\x07\x12\x03abc")
    assert main(["info", str(p)]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and str(p) in err and "not an ONNX model" in err
