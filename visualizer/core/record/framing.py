"""The live stream's wire format: a greeting, then length-prefixed, checksummed frames.

On connect, each side first sends the 8-byte greeting ``b"CNVSTRM"`` + protocol
version, so a viewer pointed at some other service (or an old recorder) gets a
clear "not a recorder" / "version mismatch" instead of a misread frame. Then::

    frame = length (uint32 LE, of the body) | type (uint8) | crc32 (uint32 LE, of type + body) | body

The frame layout never changes between protocol versions, so a REFUSED frame
explaining a mismatch can always be read. A frame longer than the receiver's
limit, of an unknown type, or with a wrong CRC ends the connection: a peer
that sends garbage is disconnected, it cannot crash or stall anything.

Control messages (viewer → recorder) are plain JSON objects, never code:
:func:`validate_request` checks the known keys' types and ranges.
"""
from __future__ import annotations

import json
import math
import socket
import struct
import zlib

PROTOCOL = 1
GREETING = b"CNVSTRM" + bytes([PROTOCOL])

HELLO = 1       # viewer → recorder: JSON {"token": ..., "client": ...}
WELCOME = 2     # recorder → viewer: an encoded record {"protocol": 1, "meta": {...}}
REFUSED = 3     # recorder → viewer: JSON {"reason": ...}, then the recorder closes
RECORD = 4      # recorder → viewer: one encoded record (a snapshot)
REQUEST = 5     # viewer → recorder: JSON control message
FRAME_TYPES = frozenset((HELLO, WELCOME, REFUSED, RECORD, REQUEST))

_HEAD = struct.Struct("<IBI")
MAX_FRAME = 64 << 20          # records; a LeNet-5 snapshot is ~50 KB
MAX_CONTROL_FRAME = 64 << 10  # handshakes and control messages


class FrameError(Exception):
    """The peer broke the protocol, or the connection ended; the message says which."""


class PeerClosed(FrameError):
    """The connection ended (cleanly or not) between or inside frames."""


def encode_frame(kind: int, body: bytes) -> bytes:
    head = _HEAD.pack(len(body), kind, zlib.crc32(body, zlib.crc32(bytes([kind]))))
    return head + body


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise PeerClosed("the connection was closed" + (" in the middle of a frame" if got else ""))
        got += k
    return bytes(buf)


def read_greeting(sock: socket.socket) -> int:
    """The peer's protocol version; FrameError if it does not greet like a cnn-visualizer peer."""
    data = recv_exact(sock, len(GREETING))
    if data[:-1] != GREETING[:-1]:
        raise FrameError("the peer is not a cnn-visualizer live stream")
    return data[-1]


def read_frame(sock: socket.socket, allowed: frozenset, max_size: int = MAX_FRAME) -> tuple[int, bytes]:
    """One frame (type, body) of a type in ``allowed``; FrameError for anything else."""
    length, kind, crc = _HEAD.unpack(recv_exact(sock, _HEAD.size))
    if kind not in FRAME_TYPES:
        raise FrameError(f"the peer sent a frame of unknown type {kind}")
    if kind not in allowed:
        raise FrameError(f"the peer sent a frame of type {kind}, which is not expected here")
    if length > max_size:
        raise FrameError(f"the peer sent a frame of {length} bytes, over the limit of {max_size}")
    body = recv_exact(sock, length)
    if zlib.crc32(body, zlib.crc32(bytes([kind]))) != crc:
        raise FrameError("the peer sent a frame with a wrong checksum")
    return kind, body


def json_body(body: bytes) -> dict:
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        raise FrameError("the peer sent a control frame that is not JSON") from None
    if not isinstance(obj, dict):
        raise FrameError("the peer sent a control frame that is not a JSON object")
    return obj


def _str_list(v, limit=1024) -> bool:
    return isinstance(v, list) and len(v) <= limit and all(isinstance(x, str) and len(x) <= 256 for x in v)


def _int_in(lo, hi):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _number_in(lo, hi):
    return lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                      and lo <= v <= hi)


# What a viewer may ask of a recorder. Unknown keys pass through (a newer viewer may
# know more); the recorder acts on the keys it knows.
REQUEST_KEYS = {
    "layers": (_str_list, "a list of layer names"),               # whose maps to capture; ["*"] = all
    "filter_layers": (_str_list, "a list of conv layer names"),   # whose kernels to capture
    "max_channels": (_int_in(1, 4096), "an int from 1 to 4096"),
    "rate_hz": (_number_in(0, 1000), "a number from 0 (pause) to 1000"),   # live snapshots per second
    "probe_index": (_int_in(0, 1 << 31), "a non-negative int"),
    "record": (lambda v: isinstance(v, bool), "true or false"),
}


def validate_request(msg) -> dict:
    """``msg`` as a control message, or ValueError naming the first bad key."""
    if not isinstance(msg, dict) or not all(isinstance(k, str) for k in msg):
        raise ValueError("a control message is a JSON object with string keys")
    for key, (ok, what) in REQUEST_KEYS.items():
        if key in msg and not ok(msg[key]):
            raise ValueError(f"control message: {key!r} must be {what}")
    try:
        body = json.dumps(msg, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"a control message holds plain JSON values only ({e})") from None
    if len(body) > MAX_CONTROL_FRAME:
        raise ValueError(f"a control message is limited to {MAX_CONTROL_FRAME} bytes")
    return json.loads(body)    # a plain copy: nothing of the caller's objects is kept
