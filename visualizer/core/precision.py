"""Every model the app works with computes in float32.

A whole pickled model, a TorchScript archive or a user's class may hold float16,
bfloat16 or float64 weights. The data, the views' statistics and the optimizer
all work in float32, and on a CPU half-precision training is slow or missing
kernels (BatchNorm, some convolutions), so a mixed model fails in the middle
of a step with an error about dtypes. Converting once, on load, with a note
saying so, is what the user wants; weights that are not real numbers at all
(complex) cannot be trained here and are refused.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .errors import ModelError


def _float_dtypes(model: nn.Module) -> set[torch.dtype]:
    return {t.dtype for t in (*model.parameters(), *model.buffers()) if t.is_floating_point() or t.is_complex()}


def to_float32(model: nn.Module) -> str | None:
    """Convert ``model``'s floating weights to float32 in place; return the note to show, or None.

    Raises ModelError when it holds complex weights, or when a converted model
    (a TorchScript or exported graph with its dtype baked in) still is not float32.
    """
    dtypes = _float_dtypes(model)
    if not dtypes or dtypes == {torch.float32}:
        return None
    complex_ = sorted(str(d).removeprefix("torch.") for d in dtypes if d.is_complex)
    if complex_:
        raise ModelError(f"the model has {', '.join(complex_)} (complex) weights; only real-valued models "
                         "can be trained and shown here")
    before = ", ".join(sorted(str(d).removeprefix("torch.") for d in dtypes if d != torch.float32))
    try:
        model.float()
    except RuntimeError as e:
        raise ModelError(f"the model's {before} weights cannot be converted to float32 ({e})") from e
    if _float_dtypes(model) != {torch.float32}:
        raise ModelError(f"the model's {before} weights could not be converted to float32 "
                         "(a compiled graph keeps its dtype); save it in float32 and open it again")
    return f"the weights were stored as {before}; converted to float32 to train and show them on this machine"
