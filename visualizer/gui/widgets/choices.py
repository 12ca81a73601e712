"""Choices offered by combo boxes: names from the core registries, with fallbacks.

The core registries (architectures, datasets) may be dicts of specs or plain
sequences of names, and may be missing while the app is assembled piecewise;
every widget that lists them goes through here so they all agree.
"""
from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QComboBox

FALLBACK_DATASETS = ("digits", "shapes", "mnist")
FALLBACK_ARCHITECTURES = ("lenet5", "simplecnn", "alexnet", "vgg11", "vgg16", "googlenet",
                          "resnet18", "plain18", "mobilenetv2")
FALLBACK_ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh")
FALLBACK_POOLINGS = ("max", "avg")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine")
BROWSE = "__browse__"

DISPLAY_NAMES = {
    "relu": "ReLU", "leaky_relu": "Leaky ReLU", "elu": "ELU", "gelu": "GELU",
    "sigmoid": "Sigmoid", "tanh": "Tanh", "silu": "SiLU", "max": "Max", "avg": "Average",
    "sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "none": "Constant", "step": "Step decay",
    "cosine": "Cosine", "digits": "Digits (8×8, built in)", "shapes": "Shapes (32×32 RGB, built in)",
    "mnist": "MNIST (test split)",
}


def names(source_module: str, attr: str, fallback):
    """Names from a core registry if it is importable and non-empty, else ``fallback``.

    Registries may be dicts (name → spec) or sequences of names; the panel only
    needs the names and, when present, a human title.
    """
    try:
        module = __import__(source_module, fromlist=[attr])
        reg = getattr(module, attr)
    except Exception:  # noqa: BLE001 - any failure means "not available yet": use defaults
        return [(n, DISPLAY_NAMES.get(n, n)) for n in fallback]
    if isinstance(reg, dict):
        items = [(str(k), _title(k, v)) for k, v in reg.items()]
    else:
        items = [(str(n), DISPLAY_NAMES.get(str(n), str(n))) for n in reg]
    return items or [(n, DISPLAY_NAMES.get(n, n)) for n in fallback]


def _title(name, spec) -> str:
    title = getattr(spec, "title", None)
    return title if isinstance(title, str) and title else DISPLAY_NAMES.get(str(name), str(name))


def _description(spec) -> str | None:
    if isinstance(spec, str):
        return spec
    d = getattr(spec, "description", None)
    return d if isinstance(d, str) else None


def registry(module_name: str, attr: str) -> dict:
    """A core registry as a dict, or {} when it is not importable (yet)."""
    try:
        reg = getattr(__import__(module_name, fromlist=[attr]), attr)
    except Exception:  # noqa: BLE001 - absent registry: no per-item hints
        return {}
    return dict(reg) if isinstance(reg, dict) else {}


def describe_items(box: QComboBox, registry: dict) -> None:
    """Item tooltips from the registry's descriptions (hover help in the drop-down)."""
    for i in range(box.count()):
        text = _description(registry.get(box.itemData(i)))
        if text:
            box.setItemData(i, text, Qt.ItemDataRole.ToolTipRole)


def combo(items) -> QComboBox:
    box = QComboBox()
    # Size to a short minimum, not the longest entry: a narrow dock must not clip the form.
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(8)
    for data, text in items:
        box.addItem(text, data)
    return box
