"""The record encoding: real snapshots round-trip (exactly, or within the stated precision), and
everything foreign, damaged or hostile is refused with one clear RecordError."""
import dataclasses
import math

import numpy as np
import pytest

from tests.core.record.craft import craft_record
from tests.core.record.same import ABS, REL, walk
from visualizer.core.model_info import ModelInfo
from visualizer.core.record.encoding import RecordError, RecordLimits, decode_record, encode_record
from visualizer.core.record.record_types import register_record_type
from visualizer.core.snapshot import Levels, TrainingSnapshot


def test_real_snapshots_round_trip_exactly_without_compaction(lenet):
    info, snaps = lenet
    for snap in snaps:
        back = decode_record(encode_record(snap, compact=False))
        assert isinstance(back, TrainingSnapshot)
        walk(snap, back)
        assert back.probe.layer("C1").maps.shape == (6, 28, 28)
    back = decode_record(encode_record(info))
    assert isinstance(back, ModelInfo) and back == info
    assert back.by_name("C3") == info.by_name("C3")      # derived index rebuilt by the class itself


def test_compact_records_are_within_the_stated_precision_and_much_smaller(lenet):
    snap = lenet[1][-1]
    exact = encode_record(snap, compact=False)
    compact = encode_record(snap)
    compacted = []
    walk(snap, decode_record(compact), compacted=compacted)
    assert ".probe.layers[0].maps" in compacted and ".probe.filters[1].grad" in compacted
    # scalars and small arrays exact, e.g. the loss, probabilities, gradient norms
    back = decode_record(compact)
    assert back.loss == snap.loss and back.gradients == snap.gradients
    assert np.array_equal(back.probe.probabilities, snap.probe.probabilities)
    assert len(compact) < 0.4 * len(exact), (len(compact), len(exact))


def test_tiny_and_huge_values_survive_compaction():
    rng = np.random.default_rng(1)
    for scale in (1e-12, 1e-7, 1.0, 3e7):
        a = (rng.standard_normal(5000) * scale).astype(np.float32)
        b = decode_record(encode_record(a))
        assert np.all(np.abs(b.astype(np.float64) - a) <= REL * np.abs(a) + ABS * np.abs(a).max() + 1e-7 * np.abs(a))
        assert np.count_nonzero(b) == np.count_nonzero(a)     # nothing underflowed to zero
    zeros = np.zeros(1000, np.float32)
    assert np.array_equal(decode_record(encode_record(zeros)), zeros)
    with_inf = np.ones(1000, np.float32)
    with_inf[3] = np.inf
    assert np.array_equal(decode_record(encode_record(with_inf)), with_inf)   # stored exactly instead


def test_scalars_containers_and_dtypes_keep_their_kind():
    value = {
        "t": (1, 2.0, True, None, "x", float("nan"), float("inf"), -float("inf"), 2 ** 62),
        "l": [1, [2, (3,)]], "empty": ((), [], {}), "np_scalars": (np.float32(0.5), np.int64(7), np.bool_(True)),
        "arrays": [np.arange(6, dtype=dt).reshape(2, 3) for dt in
                   ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1")] + [np.array([True, False]),
                                                                         np.arange(3, dtype=">i4"),
                                                                         np.zeros((0, 4), np.float32),
                                                                         np.asfortranarray(np.ones((3, 4))),
                                                                         np.array(2.5)],
    }
    back = decode_record(encode_record(value))
    t = back["t"]
    assert t[:5] == (1, 2.0, True, None, "x") and type(t[0]) is int and type(t[2]) is bool
    assert math.isnan(t[5]) and t[6] == math.inf and t[7] == -math.inf and t[8] == 2 ** 62
    assert back["l"] == [1, [2, (3,)]] and type(back["l"][1][1]) is tuple
    assert back["empty"] == ((), [], {})
    assert back["np_scalars"] == (0.5, 7, True) and type(back["np_scalars"][1]) is int
    for a, b in zip(value["arrays"], back["arrays"]):
        assert np.array_equal(a, b) and b.dtype == a.dtype.newbyteorder("<")
        assert not b.flags.writeable and b.flags.c_contiguous


@pytest.mark.parametrize("value, words", [
    (object(), "builtins.object is not a record value"),
    ({"a": {1: 2}}, "dict key 1 is not a str"),
    ({"m": [np.zeros(3, np.complex64)]}, ".m[0]: array dtype complex64 is not allowed"),
    (np.array(["a"], dtype=object), "dtype object is not allowed"),
    ((1, 2 ** 64), "[1]: the int"),
    (dataclasses.make_dataclass("Unregistered", [("x", int)])(1), "not a registered record type"),
])
def test_encoding_refuses_what_is_not_a_record_value(value, words):
    with pytest.raises((TypeError, ValueError)) as e:
        encode_record(value)
    assert words in str(e.value)


def test_cycles_and_depth_are_refused_when_encoding():
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nested deeper"):
        encode_record(loop)


@register_record_type
@dataclasses.dataclass(frozen=True)
class _Point:
    x: float
    label: str = "p"


def test_registered_types_round_trip_and_names_cannot_be_taken_twice():
    assert decode_record(encode_record((_Point(1.5), _Point(2, "q")))) == (_Point(1.5), _Point(2, "q"))
    other = dataclasses.make_dataclass("_Point", [("y", int)], frozen=True)
    with pytest.raises(ValueError, match="already taken"):
        register_record_type(other)
    register_record_type(_Point)    # the same class again is harmless


# ---------------------------------------------------------------------- refusals


def arr(dtype="f4", shape=(2,), offset=0, nbytes=8):
    return ["a", dtype, list(shape), offset, nbytes]


LEVELS = {"low": 0.0, "high": 1.0, "signed": False}


@pytest.mark.parametrize("data, words", [
    (b"", "shorter than a record"),
    (b"CNVR\x01", "shorter than a record"),
    (b"PK\x03\x04" + b"\0" * 40, "wrong magic"),
    (craft_record(1, version=9), "format 9; this version of cnn-visualizer reads format 1"),
    (craft_record(1, flags=4), "unknown record flags"),
    (craft_record(1)[:-1] + b"!", "checksum"),
    (craft_record(["t", 1, 2, 3])[:-4], "checksum"),
    (craft_record(None, header=b"{not json"), "not valid JSON"),
    (craft_record(["zz", 1]), "unknown value tag"),
    (craft_record({"a": 1}), "JSON type dict where a tagged value"),
    (craft_record(["c", "os.system", {}]), "unknown record type 'os.system'"),
    (craft_record(["c", "Levels", {**LEVELS, "low": arr()}], b"\0" * 8), "Levels.low holds an array float32[2]"),
    (craft_record(["c", "Levels", {"low": 0.0, "high": 1.0}]), "lacks the field 'signed'"),
    (craft_record(arr("O")), "dtype 'O' is not allowed"),
    (craft_record(arr("c16", nbytes=32), b"\0" * 32), "dtype 'c16' is not allowed"),
    (craft_record(arr("f4", (2, 3), nbytes=8), b"\0" * 8), "claims 8 bytes"),
    (craft_record(arr("f4", (-1,), nbytes=-4)), "non-negative ints"),
    (craft_record(arr("f4", (4,), offset=8, nbytes=16), b"\0" * 16), "of a 16-byte body"),
    (craft_record(arr("f8", (1 << 40,), nbytes=8 << 40)), "more than the limit"),
    (craft_record(arr("b1", (2,), nbytes=2), b"\x01\x07"), "bool array"),
    (craft_record(["h", "f4", [4], 0, 8, float("nan")], b"\0" * 8), "invalid scale"),
    (craft_record(["h", "i4", [4], 0, 8, 1.0], b"\0" * 8), "does not decode to float32"),
    (craft_record(1, raw_len=10 ** 12), "exceeds the limit"),
    (craft_record(["t", 1, 2 ** 70]), "does not fit 64 bits"),
])
def test_decoding_refuses_damaged_foreign_and_lying_records(data, words):
    with pytest.raises(RecordError) as e:
        decode_record(data)
    assert words in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_decoding_refuses_bombs_and_deep_nesting():
    deep = None
    for _ in range(200):
        deep = ["t", deep]
    with pytest.raises(RecordError, match="nested deeper than 32"):
        decode_record(craft_record(deep))
    # a zip bomb: a tiny stated size, a big inflated payload
    bomb = craft_record(arr("u1", (10,), nbytes=10), b"\0" * 10_000_000, compress=True, raw_len=40)
    assert len(bomb) < 20_000
    with pytest.raises(RecordError, match="does not inflate to the 40 bytes"):
        decode_record(bomb)
    with pytest.raises(RecordError, match="more than 10 values"):
        decode_record(encode_record(list(range(20)), compact=False), limits=RecordLimits(max_nodes=10))
    with pytest.raises(RecordError, match="limit of 100"):
        decode_record(encode_record(np.zeros(1000, np.int8)), limits=RecordLimits(max_bytes=100))


def test_a_record_of_another_schema_version_decodes_by_field_name():
    # A newer writer's Levels has a field this version does not know, holding a type it does not
    # know either: the field is dropped without being decoded.
    newer = craft_record(["c", "Levels", {**LEVELS, "gamma": ["c", "FutureThing", {}]}])
    assert decode_record(newer) == Levels(0.0, 1.0, False)
    # An older writer's LayerCapture had no `pool` field: it takes the class default.
    older = {"name": "C1", "kind": "conv", "shape": ["t", 6, 28, 28], "maps": None, "channels": ["t"],
             "vector": None, "mosaic": None, "levels": ["c", "Levels", LEVELS], "channel_levels": None,
             "nonfinite": 0}
    capture = decode_record(craft_record(["c", "LayerCapture", older]))
    assert capture.pool is None and capture.shape == (6, 28, 28)
    del older["name"]
    with pytest.raises(RecordError, match="LayerCapture lacks the field 'name', which has no default"):
        decode_record(craft_record(["c", "LayerCapture", older]))


def test_decoded_arrays_do_not_alias_a_writable_buffer():
    data = bytearray(encode_record(np.arange(10, dtype=np.int32), compact=False))
    a = decode_record(data)
    data[-4:] = b"\xff\xff\xff\xff"
    assert a[-1] == 9 and not a.flags.writeable
