"""Which part of a model's output is its class scores: one rule for training and for the prediction.

User models return more than a plain ``(N, classes)`` tensor: torchvision's
GoogLeNet and Inception return a namedtuple with auxiliary logits in train mode,
Hugging Face style models a dict with ``logits``, segmentation models a spatial
map, a binary classifier one logit. Taking "the first tensor found" trains a
spatial map as if it were class scores, or a single logit as a one-class problem
whose accuracy is always 100%. So there is one documented rule, used by the
trainer (loss and accuracy) and the inspector (the prediction view):

1. A tensor of shape ``(N, K)`` with ``K >= 2`` is the class scores.
2. A dict (any mapping): its ``logits`` entry, else its ``out`` entry; that entry
   must then satisfy rule 1.
3. A tuple or list, a namedtuple included: its ``logits`` field if it has one, else
   its first element (auxiliary-logit tuples put the main output first, in train
   and eval mode alike); that element must satisfy rule 1.
4. Anything else is refused with a :class:`ModelError` saying why it cannot be
   trained here: one score per sample, a spatial map, more dimensions, no tensor.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from .errors import ModelError

DICT_KEYS = ("logits", "out")
RULE = ("the visualizer trains on class scores: a tensor of shape (batch, classes) with at least 2 classes, "
        "a dict's 'logits' or 'out' entry, or the first element of a tuple")


def _check_scores(t: torch.Tensor, where: str) -> torch.Tensor:
    shape = tuple(t.shape)
    if t.dim() == 2 and shape[1] >= 2:
        return t
    if t.dim() <= 1 or (t.dim() == 2 and shape[1] == 1):
        why = (f"{where} has shape {shape}: one score per sample (a binary classifier with a sigmoid), "
               "which cross-entropy over classes cannot train; give the model 2 outputs, one per class")
    elif t.dim() == 4:
        why = (f"{where} has shape {shape}: a spatial map (per-pixel scores, as a segmentation model gives), "
               "not one score per class; end the model with global pooling and a linear layer")
    else:
        why = f"{where} has shape {shape}, not (batch, classes)"
    raise ModelError(f"{why} ({RULE})")


def class_scores(out, num_classes: int | None = None) -> torch.Tensor:
    """The ``(N, K)`` class scores in a forward's output, by the rule above; ModelError says why not.

    With ``num_classes`` (the data set's), fewer scores than classes is refused too: the
    labels of the missing classes could never be predicted (and cross-entropy would fail).
    """
    scores = _pick(out)
    if num_classes is not None and scores.shape[1] < num_classes:
        raise ModelError(f"the model gives {scores.shape[1]} scores per sample but the data set has "
                         f"{num_classes} classes; give the model one output per class")
    return scores


def _pick(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return _check_scores(out, "the output")
    if isinstance(out, Mapping):
        key = next((k for k in DICT_KEYS if k in out), None)
        if key is None:
            raise ModelError(f"the output is a dict without a 'logits' or 'out' entry "
                             f"(it has {', '.join(map(repr, list(out)[:8])) or 'no entries'}) ({RULE})")
        if not isinstance(out[key], torch.Tensor):
            raise ModelError(f"the output's {key!r} entry is a {type(out[key]).__name__}, not a tensor ({RULE})")
        return _check_scores(out[key], f"the output's {key!r} entry")
    if isinstance(out, (tuple, list)):
        if not out:
            raise ModelError(f"the output is an empty {type(out).__name__} ({RULE})")
        fields = getattr(out, "_fields", ())
        picked, where = ((out.logits, "the output's 'logits' field") if "logits" in fields
                         else (out[0], f"the first element of the output {type(out).__name__}"))
        if not isinstance(picked, torch.Tensor):
            raise ModelError(f"{where} is a {type(picked).__name__}, not a tensor ({RULE})")
        return _check_scores(picked, where)
    raise ModelError(f"the output is a {type(out).__name__}, not a tensor ({RULE})")


def class_scores_or_none(out) -> torch.Tensor | None:
    """:func:`class_scores`, or None for a model that has none (the prediction view then stays empty)."""
    try:
        return class_scores(out)
    except ModelError:
        return None
