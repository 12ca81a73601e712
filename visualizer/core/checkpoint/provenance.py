"""What a weights file says beside its weights: Lightning checkpoints, training dicts, safetensors metadata.

People save more than a state dict: ``{"net": ..., "acc": ..., "epoch": ...}`` from a training
script, a Lightning ``.ckpt`` with hyper-parameters and optimizer states, safetensors with a
metadata header. The weights are found by ``state_dict.unwrap_state_dict``; this module turns
the rest into a few lines the app shows and plain values kept in ``bundle.meta["saved_with"]``,
so the user sees where the weights came from and what was not used. Everything here was read
by the weights-only unpickler or from the safetensors JSON header: it is data, and it is only
described, never acted on (beyond class names).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

LIGHTNING_VERSION_KEY = "pytorch-lightning_version"   # written by lightning and pytorch_lightning alike
LIGHTNING_HOLDER = "the LightningModule's attribute that holds the network"
MAX_ITEMS = 12          # values shown in a note / kept in meta
MAX_TEXT = 120          # characters of one shown value


@dataclass(frozen=True)
class Provenance:
    notes: tuple[str, ...] = ()
    info: dict = field(default_factory=dict)      # plain scalars: for bundle.meta["saved_with"]
    class_names: tuple[str, ...] | None = None
    holder: str = ""                              # what a prefix the key fit keeps is (for its note)


def _scalar(v):
    """A plain, shown-able value of ``v``, or None when it is not a single value."""
    if isinstance(v, bool) or isinstance(v, int) or isinstance(v, float):
        return v
    if isinstance(v, str):
        return v if len(v) <= MAX_TEXT else v[: MAX_TEXT - 3] + "..."
    if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.is_complex():
        return v.item()
    return None


def _plain(v):
    """Scalars, and short lists/tuples of scalars (hyper-parameters such as layer widths)."""
    s = _scalar(v)
    if s is not None:
        return s
    if isinstance(v, (list, tuple)) and len(v) <= MAX_ITEMS:
        items = [_scalar(x) for x in v]
        if all(x is not None for x in items):
            return items
    return None


def _shown(values: dict) -> str:
    items = list(values.items())
    text = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in items[:MAX_ITEMS])
    return text + (f" and {len(items) - MAX_ITEMS} more" if len(items) > MAX_ITEMS else "")


def _names(v) -> tuple[str, ...] | None:
    if isinstance(v, (list, tuple)) and v and all(isinstance(c, str) for c in v):
        return tuple(v)
    return None


def _lightning(extras: dict) -> Provenance:
    hparams = extras.get("hyper_parameters")
    hp = {str(k): p for k, v in hparams.items() if (p := _plain(v)) is not None} if isinstance(hparams, dict) else {}
    info = {"saved_by": "lightning", "lightning_version": _scalar(extras.get(LIGHTNING_VERSION_KEY)),
            "epoch": _scalar(extras.get("epoch")), "global_step": _scalar(extras.get("global_step"))}
    info = {k: v for k, v in info.items() if v is not None}
    if hp:
        info["hyper_parameters"] = dict(list(hp.items())[:MAX_ITEMS])
    where = ", ".join(f"{label} {info[k]}" for k, label in (("lightning_version", "Lightning"), ("epoch", "epoch"),
                                                             ("global_step", "global step")) if k in info)
    unused = [k for k in ("optimizer_states", "lr_schedulers", "loops", "callbacks") if extras.get(k)]
    note = (f"a Lightning checkpoint ({where}): the weights come from its state_dict"
            + (f"; hyper-parameters: {_shown(hp)}" if hp else "")
            + (f"; not used: {', '.join(unused)}" if unused else ""))
    names = None
    if isinstance(hparams, dict):
        names = _names(hparams.get("class_names")) or _names(hparams.get("classes"))
    return Provenance(notes=(note,), info=info, class_names=names, holder=LIGHTNING_HOLDER)


def of_torch_file(weights_key: str | None, extras: dict) -> Provenance:
    """Provenance of a torch.save file whose weights were under ``weights_key`` (None: the file is the state dict)."""
    names = _names(extras.get("class_names")) or _names(extras.get("classes"))
    if LIGHTNING_VERSION_KEY in extras and weights_key == "state_dict":
        p = _lightning(extras)
        return Provenance(p.notes, p.info, p.class_names or names, p.holder)
    if weights_key is None:
        return Provenance(class_names=names)
    recorded = {str(k): s for k, v in extras.items() if (s := _scalar(v)) is not None}
    unused = [str(k) for k, v in extras.items() if _scalar(v) is None and k not in ("class_names", "classes")]
    note = (f"a training dict: the weights come from its {weights_key!r} entry"
            + (f"; it also records {_shown(recorded)}" if recorded else "")
            + (f"; not used: {', '.join(unused[:MAX_ITEMS])}" if unused else ""))
    info = {"saved_by": "training dict", "weights_key": weights_key, **dict(list(recorded.items())[:MAX_ITEMS])}
    return Provenance(notes=(note,), info=info, class_names=names)


def of_safetensors(metadata: dict[str, str]) -> Provenance:
    """Provenance of a safetensors file not written by this program: its header's metadata, shown as it is."""
    if not metadata:
        return Provenance()
    shown = {str(k): _scalar(str(v)) for k, v in metadata.items()}
    info = {"saved_by": "safetensors", "metadata": dict(list(shown.items())[:MAX_ITEMS])}
    return Provenance(notes=(f"safetensors metadata: {_shown(shown)}",), info=info)
