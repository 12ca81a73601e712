"""How large an ONNX model may be before it is refused, unread or unrun.

An ONNX file is data, but data that sizes allocations and loops: every limit is checked
before the part it protects is read (file size before parsing, node counts and initializer
bytes before anything is copied, external-data files before they are opened) and the run
itself is cancelled after ``run_seconds``.
"""
from __future__ import annotations

from dataclasses import dataclass

# Operator sets that onnxruntime implements itself. Anything else is a custom-op domain whose
# code would come from a shared library we never load: refused with its name.
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


@dataclass(frozen=True)
class OnnxLimits:
    max_file_bytes: int = 2_000_000_000          # the .onnx file itself (protobuf's own ceiling is 2 GiB)
    max_initializer_bytes: int = 1_500_000_000   # all weights, external data included (they are inlined)
    max_nodes: int = 20_000                      # every node, in subgraphs and local functions too
    max_subgraph_depth: int = 4                  # If/Loop/Scan bodies inside bodies
    max_capture_bytes: int = 1_000_000_000       # all node outputs of one probe run, together
    run_seconds: float = 60.0                    # one run of the model; cancelled after this

    def __post_init__(self):
        for name in ("max_file_bytes", "max_initializer_bytes", "max_nodes", "max_subgraph_depth",
                     "max_capture_bytes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not self.run_seconds > 0:
            raise ValueError("run_seconds must be positive")


DEFAULT_LIMITS = OnnxLimits()
