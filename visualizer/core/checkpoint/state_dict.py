"""State dicts from the wild: find them, clean their keys, compare them with a model.

Every difference is reported before anything is copied, because
``load_state_dict(strict=False)`` still raises on a shape mismatch and its
message is a wall of text; the user gets the first few of each kind instead.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ..errors import LoadError

# Common wrappers around a state dict: torch tutorials, Lightning, timm, DDP scripts.
WRAPPER_KEYS = ("model_state_dict", "state_dict", "model", "model_state", "net", "network",
                "weights", "params", "module")
# DataParallel/DDP add "module.", torch.compile adds "_orig_mod."; they can stack.
PREFIXES = ("module.", "_orig_mod.")
MAX_LISTED = 8


def is_tensor_dict(obj) -> bool:
    return (isinstance(obj, dict) and len(obj) > 0 and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, torch.Tensor) or k.endswith("_extra_state") for k, v in obj.items()))


def unwrap_state_dict(obj, path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The state dict inside ``obj`` and the other top-level entries (epoch, class names...)."""
    if is_tensor_dict(obj):
        return dict(obj), {}
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if is_tensor_dict(obj.get(key)):
                return dict(obj[key]), {k: v for k, v in obj.items() if k != key}
        keys = ", ".join(repr(k) for k in list(obj)[:MAX_LISTED])
        raise LoadError(path, f"no model weights found (top-level keys: {keys or 'none'})",
                        "expected a state_dict, or a dict holding one under 'model_state_dict' or 'state_dict'")
    raise LoadError(path, f"the file holds a {type(obj).__name__}, not model weights",
                    "expected a state_dict saved with torch.save(model.state_dict(), path)")


def strip_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        changed = True
        while changed:
            changed = False
            for prefix in PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def differences(model: nn.Module, sd: dict[str, torch.Tensor]):
    """(missing, unexpected, [(key, model shape, file shape)]) between ``model`` and ``sd``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [(k, tuple(expected[k].shape), tuple(sd[k].shape)) for k in expected
                  if k in sd and isinstance(sd[k], torch.Tensor) and isinstance(expected[k], torch.Tensor)
                  and expected[k].shape != sd[k].shape]
    return missing, unexpected, mismatched


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def describe_differences(missing, unexpected, mismatched) -> str:
    parts = []
    if missing:
        parts.append(f"missing from the file: {_listed(missing)}")
    if unexpected:
        parts.append(f"not in the model: {_listed(unexpected)}")
    if mismatched:
        parts.append("shape differs: " + _listed([f"{k} model {list(a)} file {list(b)}" for k, a, b in mismatched]))
    return "; ".join(parts)


def apply_state_dict(model: nn.Module, sd: dict[str, torch.Tensor], path: Path, model_name: str) -> None:
    """Copy ``sd`` into ``model`` exactly, or raise LoadError listing every kind of difference."""
    missing, unexpected, mismatched = differences(model, sd)
    if missing or unexpected or mismatched:
        raise LoadError(path, f"the weights do not fit {model_name}: "
                        + describe_differences(missing, unexpected, mismatched),
                        "choose the architecture and options the weights were saved from")
    try:
        model.load_state_dict(sd, strict=True)
    except Exception as e:  # dtype that cannot be copied, odd extra_state...
        raise LoadError(path, f"the weights could not be copied into {model_name} ({e})") from e


def nonfinite_warning(sd: dict[str, torch.Tensor]) -> str | None:
    bad = {}
    for key, t in sd.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            n = int((~torch.isfinite(t)).sum())
            if n:
                bad[key] = n
    if not bad:
        return None
    total = sum(bad.values())
    return (f"{total} weight value(s) are NaN or infinite (in {_listed(list(bad))}): "
            "the model's outputs will not be meaningful; retrain or reset it")


def first_conv_in_channels(sd: dict[str, torch.Tensor]) -> int | None:
    for key, t in sd.items():
        if key.endswith("weight") and isinstance(t, torch.Tensor) and t.dim() == 4:
            return int(t.shape[1])
    return None


def last_linear_out_features(sd: dict[str, torch.Tensor]) -> int | None:
    found = None
    for key, t in sd.items():
        if key.endswith("weight") and isinstance(t, torch.Tensor) and t.dim() == 2:
            found = int(t.shape[0])
    return found


def first_conv_out_channels(sd: dict[str, torch.Tensor]) -> int | None:
    for key, t in sd.items():
        if key.endswith("weight") and isinstance(t, torch.Tensor) and t.dim() == 4:
            return int(t.shape[0])
    return None
