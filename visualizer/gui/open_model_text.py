"""How the window names the model that is open: a built-in architecture, a checkpoint, a user's class."""
from __future__ import annotations

import os

from visualizer.core.architectures.catalog import ARCHITECTURES
from visualizer.core.engine.messages import LoadedModel


def open_model_text(model: LoadedModel) -> tuple[str, str]:
    """(short title for the architecture box, one line for the panel: what is open and where from)."""
    arch = model.arch or ""
    spec = ARCHITECTURES.get(arch)
    source = os.path.basename(model.source) if model.source else ""
    if spec is not None:
        title = spec.title
    elif ".py:" in arch:
        title = os.path.basename(arch)          # file.py:Name
    else:
        title = source or arch or "model"
    meta = dict(model.meta)
    trained = []
    if isinstance(meta.get("epochs"), int) and meta["epochs"] > 0:
        trained.append(f"{meta['epochs']} epochs")
    if isinstance(meta.get("val_accuracy"), float):
        trained.append(f"{100 * meta['val_accuracy']:.1f}% held out")
    if spec is None and ".py:" in arch:
        note = f"Open: your model {title} (fresh weights; the options below are for built-in architectures)"
    elif spec is None:
        note = f"Open: {title}" + (f" from {source}" if source and source != title else "") + \
               " (the options below are for built-in architectures)"
    elif source:
        note = f"Open: {title} from {source}" + (f", trained {', '.join(trained)}" if trained else "")
    else:
        note = f"Open: {title}, fresh weights"
    return title, note
