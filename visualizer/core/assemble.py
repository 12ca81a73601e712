"""Put a zoo model and a dataset together so they fit each other.

The CLI's ``train`` and the GUI's worker both start training from an
architecture name plus a dataset; this is the one place that decides the input
shape, the class count and the normalisation for that pair.
"""
from __future__ import annotations

from typing import Any

from .architectures import ARCHITECTURES, build_model
from .architectures.catalog import MODEL_OPTION_KEYS
from .config import Augment
from .datasets.image_dataset import ImageDataset
from .datasets.preparation import DataOptions, prepare
from .model_bundle import ModelBundle


def input_shape_for(arch: str, ds: ImageDataset, input_size: int | None = None) -> tuple[int, int, int]:
    """The dataset's channel count at the architecture's preferred size (at least 28)."""
    return _zoo_shape(arch, ds.native_shape[0], input_size)


def _zoo_shape(arch: str, channels: int, input_size: int | None) -> tuple[int, int, int]:
    spec = ARCHITECTURES[arch]
    size = int(input_size or spec.default_input_size)
    if size < 28:
        raise ValueError(f"input size {size} is too small: the zoo architectures need at least 28")
    return (int(channels), size, size)


def new_model_bundle(arch: str, ds: ImageDataset, *, input_size: int | None = None,
                     seed: int = 0, **options: Any) -> ModelBundle:
    """A freshly initialised zoo model shaped for ``ds`` (weights seeded by ``seed``)."""
    return zoo_bundle(arch, in_channels=ds.native_shape[0], class_names=tuple(ds.class_names),
                      input_size=input_size, seed=seed, dataset=ds.name, **options)


def zoo_bundle(arch: str, *, in_channels: int, class_names: tuple[str, ...], input_size: int | None = None,
               seed: int = 0, dataset: str | None = None, **options: Any) -> ModelBundle:
    """A freshly initialised zoo model for ``in_channels`` and ``class_names`` when there is no data set
    to shape it for (``cnn-visualizer info lenet5``); ``dataset`` is what its metadata names."""
    import torch

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    unknown = set(options) - set(MODEL_OPTION_KEYS)
    if unknown:
        raise ValueError(f"unknown model option(s) {', '.join(sorted(unknown))}")
    spec = ARCHITECTURES[arch]
    opts = {"width": spec.default_width, **options}
    shape = _zoo_shape(arch, in_channels, input_size)
    torch.manual_seed(seed)
    model = build_model(arch, in_channels=shape[0], num_classes=len(class_names), input_size=shape[1], **opts)
    return ModelBundle(
        model=model, input_shape=shape, class_names=tuple(class_names),
        arch=arch, arch_options={"in_channels": shape[0], "num_classes": len(class_names),
                                 "input_size": shape[1], **opts},
        meta={"dataset": dataset} if dataset else {})


def data_for(bundle: ModelBundle, ds: ImageDataset, *, val_fraction: float = 0.1,
             augment: Augment | None = None, seed: int = 0, reuse_normalisation: bool = False):
    """``ds`` resized and normalised for ``bundle``; the bundle's mean/std are set to match.

    With ``reuse_normalisation`` the bundle's stored mean/std (from a checkpoint)
    are applied instead of being recomputed, so a trained model sees its data as it did.
    """
    mean = bundle.mean if reuse_normalisation else None
    std = bundle.std if reuse_normalisation else None
    data = prepare(ds, DataOptions(input_shape=bundle.input_shape, mean=mean, std=std,
                                   val_fraction=val_fraction, augment=augment or Augment(), seed=seed))
    bundle.mean, bundle.std = tuple(data.mean), tuple(data.std)
    return data


def user_model_bundle(spec: str, *, input_shape: tuple[int, int, int] | None = None,
                      class_names: tuple[str, ...] = (),
                      shape_hint: tuple[int, int, int] | None = None) -> ModelBundle:
    """A bundle around the user's own ``path/to/file.py:Name`` (this runs their code, by their choice).

    The input shape is probed unless given (for a model without a Conv2d, ``shape_hint``,
    the open data's own shape, is tried first); the class count comes from one dummy forward,
    and ``class_names`` are used when their count matches it (else "0".."K-1").
    Normalisation starts as the identity (0, 1) per channel.
    """
    import torch

    from .checkpoint import load_user_model
    from .checkpoint.user_model import split_model_spec
    from .introspect import find_input_shape
    from .outputs import class_scores_or_none
    from .precision import to_float32

    path, _name = split_model_spec(spec)
    model = load_user_model(spec)
    note = to_float32(model)   # a class that builds itself in float16/float64 (ModelError if complex)
    shape = tuple(input_shape) if input_shape is not None else tuple(find_input_shape(model, hint=shape_hint))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros((1, *shape)))
    finally:
        model.train(was_training)
    scores = class_scores_or_none(out)
    k = int(scores.shape[1]) if scores is not None else 0
    names = tuple(class_names) if len(class_names) == k else tuple(str(i) for i in range(k))
    return ModelBundle(model=model, input_shape=shape, class_names=names,
                       mean=(0.0,) * shape[0], std=(1.0,) * shape[0], arch=spec, source=str(path),
                       warnings=(note,) if note else ())
