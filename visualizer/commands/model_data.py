"""A model and the data it is looked at with, for the commands that look without training (render, health).

Which data: ``--dataset``, else the data set a checkpoint names, else for a zoo name the
app's sample data (the model is built for it). Normalisation follows the engine's rule: a
fresh model (a zoo name, your class) learns it from the data; loaded weights keep the
one they carry.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from .errors import CliError
from .model_arguments import ZOO, ModelChoice, open_model


@dataclass
class ModelOnData:
    bundle: Any                 # ModelBundle, or OnnxBundle
    data: Any = None            # PreparedData (no validation split: every item is looked at), or None
    dataset_name: str | None = None


def open_with_data(choice: ModelChoice, dataset: str | None, *, seed: int = 0, limit: int | None = None,
                   required: bool = False) -> ModelOnData:
    """The chosen model with its data (see the module docstring); ``required``: no data is an error."""
    from ..core.resources import SAMPLE_DATASET

    if choice.fresh:
        name = dataset or (SAMPLE_DATASET if choice.kind == ZOO else None)
        ds = _read(name, seed, limit) if name else None
        bundle = open_model(choice, ds, seed=seed)
    else:
        bundle = open_model(choice)
        name = dataset or bundle.meta.get("dataset")
        ds = None
        if name:
            try:
                ds = _read(name, seed, limit)
            except Exception as e:
                if dataset or required:
                    raise
                # Only named by the checkpoint, and not here (another machine's path): look without it.
                print(f"note: could not read the data set {name!r} that {choice.text} names ({e}); "
                      "give --dataset", file=sys.stderr)
    if ds is None:
        if required:
            raise CliError(f"{choice.text}: does not say which data it was trained on; give --dataset")
        return ModelOnData(bundle)
    from ..core.assemble import data_for
    data = data_for(bundle, ds, val_fraction=0.0, reuse_normalisation=not choice.fresh)
    return ModelOnData(bundle, data, ds.name)


def saved_config(bundle):
    """The TrainConfig a checkpoint was trained with (the defaults for anything else): the optimizer
    whose one throw-away step gives the update ratios of a looking-only backward pass."""
    import dataclasses

    from ..core.config import TrainConfig
    saved = bundle.meta.get("config") if isinstance(bundle.meta.get("config"), dict) else {}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in saved.items() if k in known})


def _read(name: str, seed: int, limit: int | None):
    from ..core.datasets import load_dataset
    ds = load_dataset(name, seed=seed, limit=limit)
    if ds.skipped:
        print(f"note: skipped {len(ds.skipped)} unreadable item(s), e.g. {ds.skipped[0]}", file=sys.stderr)
    return ds
