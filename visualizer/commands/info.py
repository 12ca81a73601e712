"""``cnn-visualizer info MODEL``: the layer table of any model, or the summary of a run file."""
from __future__ import annotations

import sys

from .layer_table import format_layer_table
from .model_arguments import ONNX, RUN, add_model_arguments, choose_model, open_model


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="print the layer table of a model, or what a run file holds")
    add_model_arguments(p)


def run(args) -> int:
    choice = choose_model(args, "info")
    if choice.kind == RUN:
        from .runs import run_summary
        print(run_summary(choice.path))
        return 0
    bundle = open_model(choice)
    if choice.kind == ONNX:   # other frameworks' models: the table comes from the graph
        bundle.graph.runner.close()
        info = bundle.info
    else:
        from ..core.introspect import introspect
        info = introspect(bundle.model, bundle.input_shape)
    print(format_layer_table(info))
    for w in bundle.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0
