"""``cnn-visualizer models``: the model zoo, one line each."""
from __future__ import annotations


def add_parser(sub) -> None:
    sub.add_parser("models", help="list the model zoo")


def run(args) -> int:
    from ..core.architectures import ARCHITECTURES
    width = max(len(n) for n in ARCHITECTURES)
    for name, spec in ARCHITECTURES.items():
        print(f"{name:<{width}}  {spec.description}")
    return 0
