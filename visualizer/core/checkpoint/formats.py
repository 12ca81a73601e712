"""Tell what kind of model file a path holds, reading it but running nothing.

Sniffing looks at bytes only: zip layout (torch.save, TorchScript, torch.export
``.pt2``), the safetensors header, a bare pickle stream. The pickle inside a
torch.save archive is scanned statically for the globals it would import, so a
whole pickled model (or a booby-trapped pickle) is recognised *before* any
unpickling happens.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import LoadError
from .pickle_globals import globals_in_pickle

FORMATS = ("checkpoint", "state_dict", "safetensors", "pickled_model", "torchscript", "pt2", "unknown")
# Formats whose loading runs code stored in the file.
TRUST_FORMATS = frozenset({"pickled_model", "torchscript", "pt2"})

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80
_SAFETENSORS_MAX_HEADER = 100_000_000  # the reference implementation's own limit


@dataclass(frozen=True)
class ModelFileInfo:
    """What a trust dialog shows, and what the loader dispatches on."""

    path: str
    size: int
    sha256: str
    format: str                      # one of FORMATS
    needs_trust: bool
    unsafe_globals: tuple[str, ...] = ()
    detail: str = ""                 # one line for the user (e.g. "zip: TorchScript archive")


@dataclass(frozen=True)
class Sniffed:
    """The loader's view: the format guess before any unpickling.

    ``torch_weights`` is a torch.save file with only allowlisted globals: it is
    a checkpoint or a state dict, told apart after the weights-only load.
    """

    kind: str                        # torch_weights | safetensors | pickled_model | torchscript | pt2 | legacy_pickle
    unsafe_globals: tuple[str, ...] = ()
    detail: str = ""


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_readable(path: Path, max_bytes: int | None = None) -> int:
    """The file's size, or LoadError for missing/empty/oversized/unreadable files (nothing read yet)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise LoadError(path, "file not found", "check the path") from None
    except OSError as e:
        raise LoadError(path, f"cannot read the file ({e.strerror or e})") from e
    if path.is_dir():
        raise LoadError(path, "is a folder, not a model file", "choose a .pt, .pth, .safetensors or .pt2 file")
    if st.st_size == 0:
        raise LoadError(path, "the file is empty", "it may have been cut off while saving or copying")
    if max_bytes is not None and st.st_size > max_bytes:
        raise LoadError(path, f"the file is {st.st_size:,} bytes, over the limit of {max_bytes:,}",
                        "raise the size limit if you expect a model this large")
    return st.st_size


def _allowed_globals() -> set[str]:
    from torch import _weights_only_unpickler as wou

    return set(wou._get_allowed_globals()) | set(wou._get_user_allowed_globals())


def unsafe_globals_of(pickle_bytes: bytes) -> tuple[tuple[str, ...], bool]:
    found, complete = globals_in_pickle(pickle_bytes)
    return tuple(sorted(found - _allowed_globals())), complete


def _legacy_unsafe_globals(data: bytes) -> tuple[str, ...]:
    """Legacy torch.save writes four pickles (magic, protocol, sys info, the object): scan each."""
    stream = io.BytesIO(data)
    allowed = _allowed_globals()
    found: set[str] = set()
    for _ in range(4):
        if stream.tell() >= len(data):
            break
        names, complete = globals_in_pickle(stream)
        found |= names
        if not complete:
            break
    return tuple(sorted(found - allowed))


def verify_zip(path: Path, zf: zipfile.ZipFile) -> None:
    """CRC-check every member: torch's reader does not, so a flipped byte would load as other weights."""
    try:
        bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as e:
        raise LoadError(path, f"the file is damaged ({e})", "use an undamaged copy") from e
    if bad is not None:
        raise LoadError(path, f"the file is damaged: {bad!r} fails its checksum",
                        "the bytes changed after saving; use an undamaged copy")


def _sniff_zip(path: Path) -> Sniffed:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise LoadError(path, "the file is truncated or damaged (not a complete zip archive)",
                        "it may have been cut off while saving or downloading; use an earlier copy") from e
    with zf:
        verify_zip(path, zf)
        names = zf.namelist()
        leaves = {n.split("/", 1)[1] if "/" in n else n for n in names}
        if "archive_format" in leaves or any(n.startswith("models/") for n in leaves):
            return Sniffed("pt2", detail="torch.export archive (.pt2)")
        if "constants.pkl" in leaves or any(n.startswith("code/") for n in leaves):
            return Sniffed("torchscript", detail="TorchScript archive")
        pkl = next((n for n in names if n.endswith("data.pkl") and n.count("/") <= 1), None)
        if pkl is None:
            raise LoadError(path, "a zip archive that is not a PyTorch model file",
                            "expected a file written by torch.save, torch.jit.save or torch.export.save")
        unsafe, complete = unsafe_globals_of(zf.read(pkl))
    if unsafe or not complete:
        return Sniffed("pickled_model", unsafe, "torch.save archive that imports code (a whole pickled object)")
    return Sniffed("torch_weights", detail="torch.save archive of tensors")


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= min(size - 8, _SAFETENSORS_MAX_HEADER) and head[8:9] == b"{"


def sniff(path: Path) -> Sniffed:
    """Classify the file by its bytes. Raises LoadError for damaged or unrecognised files."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise LoadError(path, f"cannot read the file ({e.strerror or e})") from e
    size = path.stat().st_size
    if head.startswith(_ZIP_MAGIC):
        return _sniff_zip(path)
    if _looks_like_safetensors(head, size):
        return Sniffed("safetensors", detail="safetensors")
    if head[:1] == bytes([_PICKLE_PROTO]):
        # Old (pre-1.6) torch.save or a bare pickle: several pickles then raw bytes, so the
        # static scan covers the first one only; the weights-only unpickler guards the rest.
        with open(path, "rb") as f:
            unsafe = _legacy_unsafe_globals(f.read(min(size, 64 << 20)))
        return Sniffed("legacy_pickle", unsafe, "legacy (non-zip) torch.save or pickle file")
    if path.suffix.lower() == ".onnx":
        # Protobuf has no magic number: the suffix is what tells an ONNX model apart.
        raise LoadError(path, "an ONNX model, not a PyTorch model file: it opens for inspection only "
                        "(layers, filters, feature maps), through the ONNX loader",
                        'open it with `cnn-visualizer info` or the app; it needs pip install "cnn-visualizer[onnx]"')
    raise LoadError(path, "not a model file this program can read (unrecognised contents)",
                    "expected a .pt/.pth (torch.save), .safetensors, TorchScript, .pt2 or .onnx file")


def _looks_like_our_checkpoint(obj) -> bool:
    from .save import CHECKPOINT_FORMAT

    return isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT


def inspect_model_file(path: str | os.PathLike) -> ModelFileInfo:
    """Size, SHA-256, format and the non-torch globals of a model file, without running it.

    Raises LoadError when the file is missing, empty or damaged. A file whose
    contents are not recognised reports format "unknown".
    """
    p = Path(path)
    size = check_readable(p)
    digest = file_sha256(p)
    try:
        s = sniff(p)
    except LoadError as e:
        if "unrecognised" in e.problem or "not a PyTorch model" in e.problem:
            return ModelFileInfo(str(p), size, digest, "unknown", False, (), e.problem)
        raise
    fmt = {"safetensors": "safetensors", "pickled_model": "pickled_model",
           "torchscript": "torchscript", "pt2": "pt2"}.get(s.kind)
    if fmt is None and s.unsafe_globals:  # a bare pickle that imports code: never unpickled here
        fmt = "pickled_model"
    if fmt is None:  # torch_weights / legacy_pickle: the weights-only unpickler tells them apart safely
        from .torch_io import load_weights_only

        try:
            obj = load_weights_only(p, mmap=s.kind == "torch_weights")
            fmt = "checkpoint" if _looks_like_our_checkpoint(obj) else "state_dict"
            del obj
        except LoadError as e:
            if getattr(e, "needs_trust", False):
                fmt = "pickled_model"
            else:
                raise
    return ModelFileInfo(str(p), size, digest, fmt, fmt in TRUST_FORMATS, s.unsafe_globals, s.detail)


def info_for_trust(path: Path, sniffed: Sniffed, fmt: str) -> ModelFileInfo:
    return ModelFileInfo(str(path), path.stat().st_size, file_sha256(path), fmt, True,
                         sniffed.unsafe_globals, sniffed.detail)


def parse_json_meta(text: str | None, default):
    """safetensors metadata values are strings; anything malformed falls back to ``default``."""
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default
