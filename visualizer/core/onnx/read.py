"""Read an ONNX file as data: parse it, check every limit, and inline its external weights safely.

Order matters: the file size is checked before parsing; node counts, operator domains and
weight sizes before anything else is read; an external-data location before its file is
opened (it must lie inside the model's folder, symlinks resolved). External weights are then
copied into the model by this code, so onnxruntime is handed one self-contained byte string
and never opens a file a model names. Every failure is a LoadError naming the file.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import LoadError
from .deps import require
from .limits import DEFAULT_LIMITS, STANDARD_DOMAINS, OnnxLimits

# Bytes per element of TensorProto data types (onnx.TensorProto.DataType numbers).
_ITEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16,
               16: 2, 17: 1, 18: 1, 19: 1, 20: 1, 21: 1, 22: 1, 23: 1}
_EXTERNAL = 1   # TensorProto.EXTERNAL


@dataclass(frozen=True)
class ReadModel:
    """A parsed, checked ModelProto with every weight inline, and what was found on the way."""

    proto: object                 # onnx.ModelProto
    path: Path
    nodes: int                    # all nodes, subgraphs and functions included
    initializer_bytes: int
    external_files: tuple[str, ...]


def _tensor_bytes(t, path: Path) -> int:
    """Bytes a TensorProto holds or claims, whichever is more (dims may claim what data lacks)."""
    item = _ITEM_BYTES.get(int(t.data_type), 8)
    declared = item
    for d in t.dims:
        if d < 0:
            raise LoadError(path, f"the tensor {t.name!r} has a negative dimension", "the file is damaged")
        declared *= int(d)
    if int(t.data_location) == _EXTERNAL:
        length = next((int(e.value) for e in t.external_data if e.key == "length" and e.value.isdigit()), 0)
        return max(declared, length)
    held = len(t.raw_data) + 4 * (len(t.float_data) + len(t.int32_data)) + 8 * (
        len(t.int64_data) + len(t.double_data) + len(t.uint64_data)) + sum(len(s) for s in t.string_data)
    return max(declared, held)


def _graph_tensors(graph, depth: int, path: Path, limits: OnnxLimits) -> Iterator:
    """(TensorProto, where) of every tensor in ``graph``: initializers, attributes, subgraphs."""
    if depth > limits.max_subgraph_depth:
        raise LoadError(path, f"subgraphs are nested more than {limits.max_subgraph_depth} deep",
                        "the model is too complex to inspect here")
    for t in graph.initializer:
        yield t
    for s in graph.sparse_initializer:
        yield s.values
        yield s.indices
    for node in graph.node:
        yield from _node_tensors(node, depth, path, limits)


def _node_tensors(node, depth: int, path: Path, limits: OnnxLimits) -> Iterator:
    for a in node.attribute:
        if a.HasField("t"):
            yield a.t
        yield from a.tensors
        if a.HasField("sparse_tensor"):
            yield a.sparse_tensor.values
            yield a.sparse_tensor.indices
        if a.HasField("g"):
            yield from _graph_tensors(a.g, depth + 1, path, limits)
        for g in a.graphs:
            yield from _graph_tensors(g, depth + 1, path, limits)


def _all_tensors(model, path: Path, limits: OnnxLimits) -> Iterator:
    yield from _graph_tensors(model.graph, 0, path, limits)
    for f in model.functions:
        for node in f.node:
            yield from _node_tensors(node, 1, path, limits)


def _count_nodes(graph, depth: int = 0) -> int:
    n = len(graph.node)
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("g"):
                n += _count_nodes(a.g, depth + 1)
            n += sum(_count_nodes(g, depth + 1) for g in a.graphs)
    return n


def _all_nodes(graph) -> Iterator:
    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.HasField("g"):
                yield from _all_nodes(a.g)
            for g in a.graphs:
                yield from _all_nodes(g)


def _check_domains(model, path: Path) -> None:
    """Refuse operators from custom domains; a model-local function is fine (its body is checked too)."""
    local = {(f.domain, f.name) for f in model.functions}
    bodies = [n for f in model.functions for n in f.node]
    custom: dict[str, set[str]] = {}
    for node in [*_all_nodes(model.graph), *bodies]:
        domain = node.domain or ""
        if domain not in STANDARD_DOMAINS and (domain, node.op_type) not in local:
            custom.setdefault(domain, set()).add(node.op_type)
    declared = {o.domain for o in model.opset_import} - STANDARD_DOMAINS - {d for d, _ in local}
    for domain in declared:
        custom.setdefault(domain, set())
    if custom:
        listed = "; ".join(f"{d!r}" + (f" ({', '.join(sorted(ops))})" if ops else "") for d, ops in sorted(custom.items()))
        raise LoadError(path, f"the model uses custom operators from {listed}",
                        "only standard ONNX operators (and onnxruntime's own) can be run here; "
                        "export the model again without custom operators")


def _inline_external(t, path: Path, folder: Path, sizes: dict[Path, int]) -> str:
    """Copy an external tensor's bytes into it after checking where they come from; returns the location."""
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if not location:
        raise LoadError(path, f"the weight {t.name!r} is stored outside the file but names no location",
                        "the file is damaged")
    if os.path.isabs(location) or Path(location).drive or location.startswith(("/", "\\")):
        raise LoadError(path, f"the weight {t.name!r} points to the absolute path {location!r}",
                        "external weights must lie in the model's folder; this file was refused unread")
    target = (folder / location).resolve()
    if not target.is_relative_to(folder):
        raise LoadError(path, f"the weight {t.name!r} points outside the model's folder ({location!r})",
                        "external weights must lie in the model's folder; this file was refused unread")
    if not target.is_file():
        raise LoadError(path, f"the external weights file {location!r} is missing",
                        "copy it next to the model, as it was exported")
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else None
    except ValueError:
        raise LoadError(path, f"the weight {t.name!r} has a damaged offset or length", "the file is damaged") from None
    size = sizes.setdefault(target, target.stat().st_size)
    length = size - offset if length is None else length
    if offset < 0 or length < 0 or offset + length > size:
        raise LoadError(path, f"the weight {t.name!r} reaches past the end of {location!r}",
                        "the external weights file is truncated; use a complete copy")
    with open(target, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    t.raw_data = data
    del t.external_data[:]
    t.data_location = 0   # DEFAULT: inline from now on
    return location


def read_model(path: str | os.PathLike, limits: OnnxLimits = DEFAULT_LIMITS) -> ReadModel:
    """Parse and check ``path``; LoadError for anything damaged, hostile, too large or not ONNX."""
    p = Path(path)
    onnx = require(p, "onnx")
    try:
        st = p.stat()
    except FileNotFoundError:
        raise LoadError(p, "file not found", "check the path") from None
    except OSError as e:
        raise LoadError(p, f"cannot read the file ({e.strerror or e})") from e
    if p.is_dir():
        raise LoadError(p, "is a folder, not an ONNX model", "choose a .onnx file")
    if st.st_size == 0:
        raise LoadError(p, "the file is empty", "it may have been cut off while saving or copying")
    if st.st_size > limits.max_file_bytes:
        raise LoadError(p, f"the file is {st.st_size:,} bytes, over the limit of {limits.max_file_bytes:,}",
                        "raise the ONNX size limit if you expect a model this large")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise LoadError(p, f"cannot read the file ({e.strerror or e})") from e
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf raises DecodeError, RuntimeError, ... for bad bytes
        raise LoadError(p, "not an ONNX model, or a truncated one (it does not parse as one)",
                        "use a complete .onnx file as exported") from e
    del data
    if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import or not model.graph.node:
        raise LoadError(p, "not an ONNX model, or a truncated one (no graph or no operator set)",
                        "use a complete .onnx file as exported")
    nodes = _count_nodes(model.graph) + sum(len(f.node) for f in model.functions)
    if nodes > limits.max_nodes:
        raise LoadError(p, f"the graph has {nodes:,} nodes, over the limit of {limits.max_nodes:,}",
                        "raise the ONNX node limit if you expect a model this large")
    _check_domains(model, p)
    tensors = list(_all_tensors(model, p, limits))
    total = sum(_tensor_bytes(t, p) for t in tensors)
    if total > limits.max_initializer_bytes:
        raise LoadError(p, f"the weights take {total:,} bytes, over the limit of {limits.max_initializer_bytes:,}",
                        "raise the ONNX weight limit if you expect a model this large")
    folder = p.resolve().parent
    sizes: dict[Path, int] = {}
    external = []
    for t in tensors:
        if int(t.data_location) == _EXTERNAL:
            external.append(_inline_external(t, p, folder, sizes))
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # ValidationError and friends: the file is not valid ONNX
        raise LoadError(p, f"not a valid ONNX model ({_first_line(e)})", "export it again") from e
    return ReadModel(model, p, nodes, total, tuple(dict.fromkeys(external)))


def _first_line(e: BaseException, limit: int = 200) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
