"""State dicts from the wild: find them, fit their keys, load them as PyTorch itself would.

What loads is exactly what ``nn.Module.load_state_dict`` accepts once the keys are fitted
(``key_fit``); what it refuses is reported as the first few differences of each kind
(its own message is a wall of text), and what was adapted on the way comes back as notes
the app shows.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import LoadError
from .key_fit import fit_keys

# Common wrappers around a state dict: torch tutorials, Lightning, timm, DDP scripts.
WRAPPER_KEYS = ("model_state_dict", "state_dict", "model", "model_state", "net", "network",
                "weights", "params", "module")
MAX_LISTED = 8


def is_tensor_dict(obj) -> bool:
    return (isinstance(obj, dict) and len(obj) > 0 and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, torch.Tensor) or k.endswith("_extra_state") for k, v in obj.items()))


def with_metadata(new: dict, like) -> OrderedDict:
    """``new`` as an OrderedDict carrying ``like``'s ``_metadata`` (module versions that
    ``load_state_dict`` reads: a plain ``dict(sd)`` would silently drop them)."""
    out = OrderedDict(new)
    metadata = getattr(like, "_metadata", None)
    if metadata is not None:
        out._metadata = metadata
    return out


def unwrap_state_dict(obj, path: Path) -> tuple[OrderedDict, str | None, dict]:
    """(the state dict inside ``obj``, the key it was under or None, the other top-level entries)."""
    if is_tensor_dict(obj):
        return with_metadata(obj, obj), None, {}
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if is_tensor_dict(obj.get(key)):
                return with_metadata(obj[key], obj[key]), key, {k: v for k, v in obj.items() if k != key}
        keys = ", ".join(repr(k) for k in list(obj)[:MAX_LISTED])
        raise LoadError(path, f"no model weights found (top-level keys: {keys or 'none'})",
                        "expected a state_dict, or a dict holding one under 'model_state_dict' or 'state_dict'")
    raise LoadError(path, f"the file holds a {type(obj).__name__}, not model weights",
                    "expected a state_dict saved with torch.save(model.state_dict(), path)")


def differences(model: nn.Module, sd: dict[str, torch.Tensor]):
    """(missing, unexpected, [(key, model shape, file shape)]) by name alone, before PyTorch has its say."""
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


@dataclass(frozen=True)
class Fit:
    """How a state dict went into a model: what still differs (nothing: it loaded) and what was adapted."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[tuple[str, tuple, tuple], ...]
    notes: tuple[str, ...]            # the key rule used, entries left out, keys PyTorch filled in
    error: str | None = None          # load_state_dict itself failed (a dtype it cannot copy, ...)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched or self.error)

    def describe(self) -> str:
        text = describe_differences(self.missing, self.unexpected, self.mismatched) or self.error or ""
        rules = [n for n in self.notes if n.startswith(("removed", "took", "added"))]
        return text + (f" (after the keys were fitted: {'; '.join(rules)})" if rules else "")


def _filled_note(filled: list[str]) -> str:
    counters = [k for k in filled if k.endswith("num_batches_tracked")]
    notes = []
    if counters:
        layers = [k.rsplit(".", 1)[0] if "." in k else "(model)" for k in counters]
        notes.append(f"the file has no num_batches_tracked for {len(counters)} BatchNorm layer(s) "
                     f"({_listed(layers)}), as files from PyTorch before 0.4.1 do: PyTorch's "
                     "load_state_dict filled in the counter (its running mean and variance are the file's)")
    others = [k for k in filled if k not in counters]
    if others:
        notes.append(f"the file lacks {_listed(others)}: the model's own loading code accepted that")
    return "; ".join(notes)


def load_into_new_model(model: nn.Module, sd, *, holder: str = "") -> Fit:
    """Fit ``sd``'s keys to ``model`` and copy it in, accepting exactly what ``load_state_dict`` accepts.

    ``model`` must be new (built for this load): when the result is not ``ok`` it may hold a
    partial copy and has to be discarded. Shapes are compared first, because
    ``load_state_dict(strict=False)`` still raises on them with a wall of text; then
    PyTorch's own missing/unexpected lists decide (it fills in BatchNorm's
    ``num_batches_tracked`` for files without module versions, and a model's own
    ``_load_from_state_dict`` or load hooks may rename or accept keys). ``holder``: what
    a kept prefix is, for the note ("the LightningModule's attribute ...").
    """
    expected = model.state_dict()
    fit = fit_keys(expected, sd)
    fitted = fit.state_dict
    _, _, mismatched = differences(model, fitted)
    bad = {k for k, _, _ in mismatched}
    loadable = with_metadata({k: v for k, v in fitted.items() if k not in bad}, fitted)
    notes = fit.rule_notes(holder)
    try:
        result = model.load_state_dict(loadable, strict=False)
    except Exception as e:  # noqa: BLE001 - a dtype that cannot be copied, odd extra_state, a user hook...
        return Fit((), (), tuple(mismatched), notes, error=f"load_state_dict failed ({e})")
    missing = [k for k in result.missing_keys if k not in bad]
    filled = [k for k in expected if k not in fitted and k not in result.missing_keys]
    if filled:
        notes += (_filled_note(filled),)
    return Fit(tuple(missing), tuple(result.unexpected_keys), tuple(mismatched), notes)


def apply_state_dict(model: nn.Module, sd, path: Path, model_name: str, *, holder: str = "") -> tuple[str, ...]:
    """Copy ``sd`` into the new ``model``, or raise LoadError listing every kind of difference.

    Returns the notes on what was adapted (the key rule, entries left out, keys PyTorch filled in).
    """
    fit = load_into_new_model(model, sd, holder=holder)
    if fit.error and not (fit.missing or fit.unexpected or fit.mismatched):
        raise LoadError(path, f"the weights could not be copied into {model_name} ({fit.error})")
    if not fit.ok:
        raise LoadError(path, f"the weights do not fit {model_name}: " + fit.describe(),
                        "choose the architecture and options the weights were saved from")
    return fit.notes


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
