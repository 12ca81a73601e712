"""One record encoding for run files and the live stream: plain data in, bytes out, no pickle.

A record is::

    offset  size  field
    0       4     magic b"CNVR"
    4       1     format version (FORMAT_VERSION)
    5       1     flags: bit 0 = the payload is zlib-compressed
    6       2     reserved, 0
    8       4     H: header length (JSON, padded with spaces to a multiple of 8)
    12      8     raw payload length (header + body, after decompression)
    20      4     CRC32 of bytes 0..19 and 24..end
    24      ...   payload: the header (JSON tree of the value), then the body (the
                  arrays' bytes, each at an 8-aligned offset), possibly zlib-compressed

The JSON tree holds scalars as themselves (JSON's NaN/Infinity extension keeps
non-finite floats) and every container as a tagged list: ``["t", ...]`` tuple,
``["l", ...]`` list, ``["d", {...}]`` dict with str keys, ``["c", "Name", {...}]``
a registered dataclass (record_types.py), ``["a", dtype, shape, offset, nbytes]``
an array, ``["h", dtype, shape, offset, nbytes, scale]`` a compacted float32
array. Decoding builds nothing but those: unknown type names, dtypes outside
the allow-list, shapes that disagree with their byte counts, offsets outside
the body, depths, sizes and counts beyond :class:`RecordLimits` all raise
:class:`RecordError`, and so does any flipped byte (the CRC).

Schema changes: dataclass fields are matched by name. A field the reader's class
no longer has is dropped without being decoded (so a removed class such as an
old ``Mosaic`` inside a dropped field costs nothing); a field the record lacks
takes the class's default, and only a missing field without a default is an
error.

Compact mode (``compact=True``, for run files and the stream): float32 arrays of
at least ``COMPACT_MIN_ELEMENTS`` finite values are stored as float16 of
``value / max|value|`` plus that scale, so gradients of 1e-9 do not underflow and
activations of 1e5 do not overflow. Precision: every value comes back within a
relative 2^-11 (0.05%) of itself, or within 2^-25 * max|value| absolute for values
below 2^-14 * max|value|. Smaller arrays, arrays with NaN/inf, every other dtype
and all scalars are exact. The body is then zlib-compressed (level 1) when that
saves at least an eighth: measured on a LeNet-5 training snapshot with every
layer, filters, their change and gradient, the compacted record (76 KB, from 133 KB
exact) shrinks to about 52% (40 KB; ReLU outputs are full of zeros and the JSON
header compresses well), for under two milliseconds of the writer's time.
"""
from __future__ import annotations

import dataclasses
import json
import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from .record_types import type_by_name, type_of

MAGIC = b"CNVR"
FORMAT_VERSION = 1
FLAG_ZLIB = 1
_PREFIX = struct.Struct("<4sBBHIQI")
PREFIX_SIZE = _PREFIX.size   # 24
_ALIGN = 8

COMPACT_MIN_ELEMENTS = 256
_ZLIB_LEVEL = 1
_ZLIB_MIN_SAVING = 1 / 8

# Canonical little-endian dtypes a record may hold, by the name written in the header.
DTYPES = {name: np.dtype(code) for name, code in
          (("f2", "<f2"), ("f4", "<f4"), ("f8", "<f8"), ("i1", "i1"), ("i2", "<i2"), ("i4", "<i4"),
           ("i8", "<i8"), ("u1", "u1"), ("b1", "?"))}
_DTYPE_NAMES = {dt: name for name, dt in DTYPES.items()}
_INT64 = 1 << 63
_PLAIN = frozenset((str, int, float, bool, type(None)))   # JSON scalars, exact types


class RecordError(ValueError):
    """Bytes that are not a valid record of this schema; the message says what and where."""


@dataclass(frozen=True)
class RecordLimits:
    """Upper bounds checked before anything is allocated from a record's own claims."""

    max_bytes: int = 256 << 20          # a whole record, and its decompressed body
    max_header_bytes: int = 16 << 20
    max_depth: int = 32
    max_nodes: int = 1_000_000           # values of any kind in the tree
    max_array_elements: int = 64 << 20   # in one array


DEFAULT_LIMITS = RecordLimits()


# ---------------------------------------------------------------------- encoding


class _Encoder:
    def __init__(self, compact: bool, limits: RecordLimits):
        self.compact = compact
        self.limits = limits
        self.parts: list = []
        self.size = 0
        self.nodes = 0

    def value(self, v, depth: int):
        self.nodes += 1
        if depth > self.limits.max_depth:
            raise ValueError(f"nested deeper than {self.limits.max_depth} levels (a cycle?)")
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            if not -_INT64 <= v < _INT64:
                raise ValueError(f"the int {v} does not fit 64 bits")
            return v
        if isinstance(v, float):
            return v
        if isinstance(v, np.ndarray):
            return self.array(v)
        if isinstance(v, np.generic):
            if isinstance(v, (np.floating, np.integer, np.bool_)) and not isinstance(v, np.longdouble):
                return self.value(v.item(), depth)
            raise TypeError(f"numpy scalar of dtype {v.dtype} is not a record value")
        if isinstance(v, tuple):
            return ["t", *self.items(v, depth)]
        if isinstance(v, list):
            return ["l", *self.items(v, depth)]
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if not isinstance(k, str):
                    raise TypeError(f"dict key {k!r} is not a str")
                out[k] = self.at(k, x, depth)
            return ["d", out]
        rt = type_of(v)
        if rt is not None:
            return ["c", rt.name, {name: self.at(name, getattr(v, name), depth) for name in rt.fields}]
        if dataclasses.is_dataclass(v):
            raise TypeError(f"{type(v).__qualname__} is not a registered record type (see register_record_type)")
        raise TypeError(f"{type(v).__module__}.{type(v).__qualname__} is not a record value")

    def items(self, seq, depth):
        return [self.at(i, x, depth) for i, x in enumerate(seq)]

    def at(self, key, x, depth):
        try:
            return self.value(x, depth + 1)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{_join(key, e)}") from None

    def array(self, a: np.ndarray):
        dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        name = _DTYPE_NAMES.get(dt)
        if name is None:
            raise TypeError(f"array dtype {a.dtype} is not allowed in records (allowed: {', '.join(DTYPES)})")
        if not (a.flags.c_contiguous and a.dtype == dt):
            a = np.array(a, dtype=dt, order="C")   # not ascontiguousarray: it turns 0-d into 1-d
        shape = list(a.shape)
        if self.compact and name == "f4" and a.size >= COMPACT_MIN_ELEMENTS:
            with np.errstate(invalid="ignore"):
                scale = float(np.max(np.abs(a)))
            if math.isfinite(scale):
                q = (a / np.float32(scale) if scale > 0 else np.zeros(a.shape, np.float32)).astype("<f2")
                return ["h", "f4", shape, self.add(q), q.nbytes, scale]
        return ["a", name, shape, self.add(a), a.nbytes]

    def add(self, a: np.ndarray) -> int:
        pad = -self.size % _ALIGN
        if pad:
            self.parts.append(b"\0" * pad)
            self.size += pad
        offset = self.size
        if a.nbytes:
            self.parts.append(memoryview(a).cast("B"))
            self.size += a.nbytes
        if self.size > self.limits.max_bytes:
            raise ValueError(f"arrays exceed the record limit of {self.limits.max_bytes} bytes")
        return offset


def _join(key, e) -> str:
    msg = str(e)
    where = f"[{key}]" if isinstance(key, int) else f".{key}"
    # Messages grow a path from the innermost failure outwards: ".layers[2].maps: ..."
    if msg.startswith((".", "[")):
        return where + msg
    return f"{where}: {msg}"


def encode_record(obj, *, compact: bool = True, compress: bool | None = None,
                  limits: RecordLimits = DEFAULT_LIMITS) -> bytes:
    """``obj`` (schema dataclasses, arrays, tuples, lists, str-keyed dicts, scalars) as record bytes.

    ``compact``: big float32 arrays as scaled float16 (module docstring states the
    precision). ``compress``: zlib the body where it pays; defaults to ``compact``.
    Raises TypeError/ValueError naming the path of a value that cannot be recorded.
    """
    enc = _Encoder(compact, limits)
    try:
        root = enc.value(obj, 0)
    except (TypeError, ValueError) as e:
        msg = str(e)
        raise type(e)(f"cannot record {type(obj).__qualname__}{'' if msg[:1] in '.[' else ': '}{msg}") from None
    if enc.nodes > limits.max_nodes:
        raise ValueError(f"record has {enc.nodes} values, more than the limit of {limits.max_nodes}")
    header = json.dumps(root, separators=(",", ":"), allow_nan=True).encode("ascii")
    header += b" " * (-len(header) % _ALIGN)   # JSON ignores trailing spaces; keeps the body aligned
    if len(header) > limits.max_header_bytes:
        raise ValueError(f"record header of {len(header)} bytes exceeds the limit of {limits.max_header_bytes}")
    payload = b"".join((header, *enc.parts))
    raw_len, flags = len(payload), 0
    if compact if compress is None else compress:
        packed = zlib.compress(payload, _ZLIB_LEVEL)
        if len(packed) <= raw_len * (1 - _ZLIB_MIN_SAVING):
            payload, flags = packed, FLAG_ZLIB
    head = _PREFIX.pack(MAGIC, FORMAT_VERSION, flags, 0, len(header), raw_len, 0)[:20]
    crc = zlib.crc32(payload, zlib.crc32(head))
    return b"".join((head, struct.pack("<I", crc), payload))


def is_record(data) -> bool:
    """Cheap sniff (magic only): whether ``data`` looks like record bytes at all."""
    return len(data) >= PREFIX_SIZE and bytes(data[:4]) == MAGIC


# ---------------------------------------------------------------------- decoding


class _Decoder:
    def __init__(self, body: bytes, limits: RecordLimits):
        self.body = body
        self.limits = limits
        self.nodes = 0

    def value(self, n, depth: int):
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise RecordError(f"more than {self.limits.max_nodes} values")
        if depth > self.limits.max_depth:
            raise RecordError(f"nested deeper than {self.limits.max_depth} levels")
        if n is None or isinstance(n, (bool, str, float)):
            return n
        if isinstance(n, int):
            if not -_INT64 <= n < _INT64:
                raise RecordError("an int does not fit 64 bits")
            return n
        if not isinstance(n, list) or not n or not isinstance(n[0], str):
            raise RecordError(f"a value of JSON type {type(n).__name__} where a tagged value was expected")
        tag = n[0]
        if tag == "t" or tag == "l":
            items = n[1:]
            if all(type(x) in _PLAIN for x in items):
                # Fast path for tuples of scalars (channel lists, class names): no recursion.
                self.nodes += len(items)
                if self.nodes > self.limits.max_nodes:
                    raise RecordError(f"more than {self.limits.max_nodes} values")
                if any(type(x) is int and not -_INT64 <= x < _INT64 for x in items):
                    raise RecordError("an int does not fit 64 bits")
                return tuple(items) if tag == "t" else items
            out = [self.at(i, x, depth) for i, x in enumerate(items)]
            return tuple(out) if tag == "t" else out
        if tag == "d":
            if len(n) != 2 or not isinstance(n[1], dict):
                raise RecordError("a malformed dict")
            return {k: self.at(k, x, depth) for k, x in n[1].items()}
        if tag == "c":
            return self.instance(n, depth)
        if tag in ("a", "h"):
            return self.array(n)
        raise RecordError(f"unknown value tag {tag[:20]!r}")

    def at(self, key, x, depth):
        try:
            return self.value(x, depth + 1)
        except RecordError as e:
            raise RecordError(_join(key, e)) from None

    def instance(self, n, depth):
        if len(n) != 3 or not isinstance(n[1], str) or not isinstance(n[2], dict):
            raise RecordError("a malformed dataclass value")
        rt = type_by_name(n[1])
        if rt is None:
            raise RecordError(f"unknown record type {n[1][:80]!r}")
        values = n[2]
        kwargs = {}
        for name, spec in rt.fields.items():
            if name not in values:
                if spec.required:
                    raise RecordError(f"{rt.name} lacks the field {name!r}, which has no default")
                continue
            v = self.at(name, values[name], depth)
            if spec.check is not None and not spec.check(v):
                raise RecordError(f".{name}: {rt.name}.{name} holds {_kind(v)}, expected {spec.expected}")
            kwargs[name] = v
        # Fields the record has and the class does not are dropped undecoded (older/newer schema).
        try:
            return rt.cls(**kwargs)
        except (TypeError, ValueError, KeyError, IndexError) as e:
            raise RecordError(f"{rt.name} refused its fields: {e}") from None

    def array(self, n):
        compacted = n[0] == "h"
        if len(n) != (6 if compacted else 5):
            raise RecordError("a malformed array")
        _, name, shape, offset, nbytes, *rest = n
        dt = DTYPES.get(name) if isinstance(name, str) else None
        if dt is None:
            raise RecordError(f"array dtype {str(name)[:20]!r} is not allowed")
        if (not isinstance(shape, list) or len(shape) > 32
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise RecordError("an array shape that is not a list of non-negative ints")
        count = math.prod(shape)
        if count > self.limits.max_array_elements:
            raise RecordError(f"an array of {count} elements, more than the limit of {self.limits.max_array_elements}")
        stored = DTYPES["f2"] if compacted else dt
        if compacted and dt != DTYPES["f4"]:
            raise RecordError("a compacted array that does not decode to float32")
        if not (isinstance(offset, int) and isinstance(nbytes, int)) or nbytes != count * stored.itemsize:
            raise RecordError(f"an array of shape {tuple(shape)} {name} claims {nbytes!r} bytes")
        if offset < 0 or offset + nbytes > len(self.body):
            raise RecordError(f"an array at bytes {offset}..{offset + nbytes} of a {len(self.body)}-byte body")
        a = np.frombuffer(self.body, dtype=stored, count=count, offset=offset).reshape(shape)
        if name == "b1" and count and a.view(np.uint8).max() > 1:
            raise RecordError("a bool array holding bytes other than 0 and 1")
        if compacted:
            scale = rest[0]
            if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not (0 <= scale < math.inf):
                raise RecordError("a compacted array with an invalid scale")
            a = a.astype(np.float32)
            a *= np.float32(scale)
            a.setflags(write=False)
        return a   # frombuffer over immutable bytes: already read-only and C-contiguous


def _kind(v) -> str:
    if isinstance(v, np.ndarray):
        return f"an array {v.dtype}{list(v.shape)}"
    if v is None:
        return "None"
    return f"a {type(v).__qualname__}"


def decode_record(data, *, limits: RecordLimits = DEFAULT_LIMITS):
    """The value encoded in ``data``; raises :class:`RecordError` (one line) for anything invalid.

    Arrays come back read-only and C-contiguous, in the dtype they were recorded
    in (compacted ones as float32); uncompressed ones are views of ``data``.
    """
    if not isinstance(data, bytes):
        data = bytes(data)   # views of writable buffers would give writable arrays
    if len(data) < PREFIX_SIZE:
        raise RecordError(f"{len(data)} bytes, shorter than a record's {PREFIX_SIZE}-byte prefix")
    if len(data) > limits.max_bytes:
        raise RecordError(f"{len(data)} bytes, more than the limit of {limits.max_bytes}")
    magic, version, flags, _reserved, header_len, raw_len, crc = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise RecordError("not a cnn-visualizer record (wrong magic bytes)")
    if version > FORMAT_VERSION or version < 1:
        raise RecordError(f"record format {version}; this version of cnn-visualizer reads format "
                          f"{FORMAT_VERSION} (update it to read newer records)")
    if flags & ~FLAG_ZLIB:
        raise RecordError(f"unknown record flags {flags:#x}")
    if raw_len > limits.max_bytes:
        raise RecordError(f"payload of {raw_len} bytes exceeds the limit of {limits.max_bytes}")
    if header_len > min(limits.max_header_bytes, raw_len):
        raise RecordError(f"header of {header_len} bytes does not fit a {raw_len}-byte payload")
    view = memoryview(data)
    if zlib.crc32(view[PREFIX_SIZE:], zlib.crc32(view[:20])) != crc:
        raise RecordError("checksum mismatch: the record is damaged or truncated")
    if flags & FLAG_ZLIB:
        payload = memoryview(_inflate(view[PREFIX_SIZE:], raw_len))
    else:
        if len(data) - PREFIX_SIZE != raw_len:
            raise RecordError(f"payload of {len(data) - PREFIX_SIZE} bytes where the prefix says {raw_len}")
        payload = view[PREFIX_SIZE:]
    try:
        root = json.loads(payload[:header_len].tobytes())
    except (ValueError, RecursionError) as e:
        raise RecordError(f"header is not valid JSON ({type(e).__name__})") from None
    return _Decoder(payload[header_len:], limits).value(root, 0)


def _inflate(packed, raw_len: int) -> bytes:
    d = zlib.decompressobj()
    try:
        # One byte more than stated: a stream that inflates to more (a zip bomb) stops
        # there and fails the length check, and an honest one reaches its end (eof).
        out = d.decompress(packed, raw_len + 1)
    except zlib.error as e:
        raise RecordError(f"compressed body is damaged ({e})") from None
    if len(out) != raw_len or not d.eof or d.unused_data:
        raise RecordError(f"compressed body does not inflate to the {raw_len} bytes the prefix states")
    return out
