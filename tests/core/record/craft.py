"""Hand-made records, written from the layout documented in encoding.py (not with its encoder).

The refusal tests need records whose checksum is right but whose content lies
(unknown types, wrong dtypes, shapes that disagree with their bytes): the CRC
alone would otherwise refuse them before the checks under test run.
"""
import json
import struct
import zlib


def craft_record(tree, body: bytes = b"", *, version: int = 1, flags: int = 0, raw_len=None,
                 compress: bool = False, header: bytes | None = None) -> bytes:
    head_json = json.dumps(tree).encode() if header is None else header
    head_json += b" " * (-len(head_json) % 8)
    payload = head_json + body
    n = len(payload) if raw_len is None else raw_len
    if compress:
        payload = zlib.compress(payload)
        flags |= 1
    first = struct.pack("<4sBBHIQ", b"CNVR", version, flags, 0, len(head_json), n)
    crc = zlib.crc32(payload, zlib.crc32(first))
    return first + struct.pack("<I", crc) + payload
