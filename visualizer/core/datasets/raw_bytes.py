"""Reading a data file whole, un-gzipping it when its first bytes say gzip."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from ..errors import LoadError

GZIP_MAGIC = b"\x1f\x8b"


def read_maybe_gzipped(path: Path) -> bytes:
    """The file's bytes, decompressed if it is gzip; LoadError if a ``.gz`` is not gzip or is damaged."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise LoadError(path, f"cannot read file: {e.strerror or e}", "check that it exists and is readable") from e
    if data[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise LoadError(path, f"gzip data is damaged or truncated ({e})", "download the file again") from e
    if path.suffix.lower() == ".gz":
        raise LoadError(path, "named .gz but is not gzip-compressed",
                        "download the file again, or remove the .gz suffix if it is already uncompressed")
    return data
