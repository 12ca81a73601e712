"""A probe pass leaves the trainer packed (values plus layout) and is built where it is read.

The records must be what an eager build gives, wherever they are built: in the trainer's
process, or unpickled in a process that cannot import torch (the window's).
"""
from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import weakref

import numpy as np
import pytest
import torch

from tests.core.test_inspector import BNNet, bundle
from visualizer.core.inspector import Inspector
from visualizer.core.packed_pass import Unbuilt
from visualizer.core.snapshot import CaptureRequest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


EVERY_LAYER = CaptureRequest(layers=("*",), filter_layers=("conv",))


def _probe(request=EVERY_LAYER):
    img = np.random.default_rng(1).random((3, 8, 8), dtype=np.float32)
    with Inspector(bundle(BNNet())) as insp:
        snap = insp.probe(request, img, label=1)
        insp.model.eval()
        x = insp._input_tensor(img)
        with torch.no_grad():
            m = insp.model
            conv = m.conv(x)
            pre = m.bn(conv)
            expected = {"conv": conv[0], "bn": pre[0], "F.relu": torch.relu(pre)[0],
                        "pool": m.pool(torch.relu(pre))[0]}
    return snap, expected


def _unbuilt(snap) -> bool:
    return isinstance(snap.__dict__["_built_layers"], Unbuilt)


def test_the_trainer_hands_the_records_over_unbuilt_and_reading_builds_them_once():
    snap, expected = _probe()
    assert _unbuilt(snap)
    layers = snap.layers
    assert not _unbuilt(snap) and snap.layers is layers        # built once, kept
    assert [c.name for c in layers] == ["conv", "bn", "F.relu", "pool", "F.flatten", "fc"]
    for name, t in expected.items():
        np.testing.assert_allclose(snap.layer(name).maps, t.numpy(), rtol=1e-5, atol=1e-6)
    relu = snap.activations[0]
    assert relu.name == "F.relu" and relu.pre.counts.sum() == expected["bn"].numel()
    assert relu.frac_dead == pytest.approx(float((expected["F.relu"] == 0).float().mean()))
    pool = snap.layer("pool").pool
    assert pool.mode == "max" and pool.argmax.shape == (6, 4, 4) and not pool.argmax.flags.writeable
    assert not snap.layer("conv").maps.flags.writeable


def test_a_copy_with_another_input_image_stays_unbuilt_and_builds_the_same_records():
    snap, expected = _probe()
    other = snap.with_input_image(np.zeros((3, 8, 8), np.float32))
    assert _unbuilt(other) and other.input_image.max() == 0 and snap.input_image.max() > 0
    np.testing.assert_array_equal(other.layer("bn").maps, snap.layer("bn").maps)


def test_unpickled_where_torch_cannot_be_imported_the_records_are_the_same():
    snap, _ = _probe()
    blob = pickle.dumps(snap)
    assert _unbuilt(snap)                                       # pickling did not build them here
    code = ("import sys, pickle\n"
            "sys.modules['torch'] = None\n"                      # any import of torch now fails
            "snap = pickle.loads(sys.stdin.buffer.read())\n"
            "out = {c.name: (c.maps.tolist() if c.maps is not None else c.vector.tolist(), c.nonfinite)"
            " for c in snap.layers}\n"
            "a = snap.activations[0]\n"
            "out['stats'] = (a.name, a.pre_min, a.pre_max, a.out_mean, a.frac_dead, a.pre.counts.tolist())\n"
            "out['frozen'] = snap.layers[0].maps.flags.writeable or snap.layers[0].maps.base.flags.writeable\n"
            "sys.stdout.buffer.write(pickle.dumps(out))\n")
    r = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, timeout=60, cwd=REPO)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    there = pickle.loads(r.stdout)
    for c in snap.layers:
        values = c.maps if c.maps is not None else c.vector
        np.testing.assert_array_equal(np.asarray(there[c.name][0], np.float32), values)
        assert there[c.name][1] == c.nonfinite
    a = snap.activations[0]
    assert there["stats"][:5] == (a.name, a.pre_min, a.pre_max, a.out_mean, a.frac_dead)
    assert there["stats"][5] == a.pre.counts.tolist()
    assert there["frozen"] is False


def test_non_finite_values_are_counted_per_layer_after_the_trip():
    with Inspector(bundle(BNNet())) as insp:
        with torch.no_grad():
            insp.model.conv.weight[0, 0, 0, 0] = float("nan")    # channel 0 of conv is all NaN
        snap = insp.probe(CaptureRequest(layers=("*",)), np.ones((3, 8, 8), np.float32))
    snap = pickle.loads(pickle.dumps(snap))
    conv = snap.layer("conv")
    assert conv.nonfinite == 64 and np.isfinite(conv.maps).all() and (conv.maps[0] == 0).all()


def _owner(a):
    """What owns an array's memory (an array's base chain ends at it: a torch tensor, or an array)."""
    while getattr(a, "base", None) is not None:
        a = a.base
    return a


def test_the_activations_inputs_are_freed_once_their_statistics_are_built_and_the_statistics_travel():
    # The inputs are read only for the statistics: a snapshot kept in the window must not hold them
    # (a quarter more memory on ResNet-18 at 224 when it did).
    snap, expected = _probe()
    packed = snap.__dict__["_built_layers"].packed
    assert packed.inputs.host.size == expected["bn"].numel()           # the ReLU's input, whole
    inputs = weakref.ref(_owner(packed.inputs.host))
    kept = weakref.ref(_owner(packed.values.host))
    stats = snap.activations
    gc.collect()
    assert inputs() is None and kept() is not None
    # Pickled after the build (a recorder's snapshot sent on): the statistics go with it.
    again = pickle.loads(pickle.dumps(snap))
    a, b = again.activations[0], stats[0]
    assert (a.name, a.pre_min, a.pre_max, a.out_mean, a.frac_dead) == (b.name, b.pre_min, b.pre_max, b.out_mean,
                                                                        b.frac_dead)
    np.testing.assert_array_equal(a.pre.counts, b.pre.counts)
    np.testing.assert_array_equal(again.layer("bn").maps, snap.layer("bn").maps)


def test_statistics_that_travel_built_arrive_as_the_ones_built_there():
    # The layers read, the activations not: the statistics were built with them and travel built.
    snap, _ = _probe()
    assert snap.layers and not _unbuilt(snap)
    again = pickle.loads(pickle.dumps(snap))
    a, b = again.activations[0], snap.activations[0]
    assert (a.name, a.pre_min, a.pre_max, a.out_mean, a.frac_dead) == (b.name, b.pre_min, b.pre_max, b.out_mean,
                                                                        b.frac_dead)
    np.testing.assert_array_equal(a.pre.counts, b.pre.counts)
    assert not a.pre.counts.flags.writeable and not a.pre.edges.flags.writeable
