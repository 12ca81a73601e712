"""A model's layer table as the command line prints it (``info``, and ``info`` of a run file)."""
from __future__ import annotations


def format_layer_table(info) -> str:
    """One row per layer of a ModelInfo, indented by nesting; calls in ``forward`` are marked "(f)"."""
    rows = [("layer", "kind", "output", "params", "detail")]
    for layer in info.layers:
        depth = _depth(layer)
        shape = "×".join(str(d) for d in layer.output_shape) if layer.output_shape else "-"
        name = "  " * depth + _local_name(layer)
        rows.append((name + (" (f)" if layer.functional else ""), layer.kind, shape, f"{layer.params:,}", layer.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i != 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    c, h, w = info.input_shape
    lines.append(f"input {c}×{h}×{w}, {info.total_params:,} parameters")
    return "\n".join(lines)


def _depth(layer) -> int:
    # A functional layer sits under its parent module: "layer1.0.F.add" is one level below "layer1.0".
    if layer.functional:
        return 0 if layer.parent is None else layer.parent.count(".") + 1
    return layer.name.count(".")


def _local_name(layer) -> str:
    if layer.functional:
        return layer.name[len(layer.parent) + 1:] if layer.parent else layer.name
    return layer.name.rsplit(".", 1)[-1]
