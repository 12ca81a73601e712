"""``load_model``: any supported model file to a complete ModelBundle, safe by default.

Tier 1 (no prompt): our checkpoint, state dicts and safetensors, read with
``torch.load(weights_only=True, map_location="cpu")`` or safetensors. Tier 2
(whole pickled models, TorchScript, ``.pt2``): these run code from the file, so
they raise TrustRequired unless the caller passes ``trust`` after the user
confirmed that very file. There is never an automatic retry with
``weights_only=False``. The bundle is returned only when complete; nothing
global is changed on the way, so a failed load leaves the caller's model as it was.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import LoadError, ModelError, TrustRequired
from ..model_bundle import ModelBundle
from ..precision import to_float32
from .formats import Sniffed, check_readable, info_for_trust, parse_json_meta, sniff
from .guess import guessed_metadata
from .provenance import Provenance, of_safetensors, of_torch_file
from .save import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, SAFETENSORS_FORMAT
from .state_dict import apply_state_dict, nonfinite_warning, unwrap_state_dict
from .torch_io import load_trusted, load_weights_only
from .user_model import USER_MODULE_PREFIX, load_user_model
from .zoo_match import build_matching

DEFAULT_MAX_BYTES = 2_000_000_000
TRUSTED_NOTE = ("loaded by running code from the file (you trusted it); "
                "consider re-saving the weights as safetensors")


class ArchitectureRequired(LoadError):
    """The file holds weights only: the caller must name the model (zoo ``arch`` or ``model_spec``)."""


def load_model(path: str | os.PathLike, *, arch: str | None = None, arch_options: dict | None = None,
               model_spec: str | None = None, trust: bool | str = False,
               max_bytes: int = DEFAULT_MAX_BYTES) -> ModelBundle:
    """Load a model file into a new ModelBundle, or raise LoadError/TrustRequired.

    ``arch``/``arch_options`` or ``model_spec`` ("file.py:Name", runs that file)
    name the model for bare weights and override what a checkpoint records.
    ``trust``: True, or better the SHA-256 the user confirmed (then exactly those
    bytes are loaded, so a file swapped after the dialog is refused). A training
    state saved with the checkpoint comes back as ``bundle.meta["training_state"]``.
    """
    user_modules_before = {m for m in sys.modules if m.startswith(USER_MODULE_PREFIX)}
    try:
        return _in_float32(Path(path), _load(Path(path), arch, arch_options, model_spec, trust, max_bytes))
    except BaseException:
        # A failed load leaves no trace: forget the user's file imported on the way.
        for name in [m for m in sys.modules if m.startswith(USER_MODULE_PREFIX)]:
            if name not in user_modules_before:
                sys.modules.pop(name, None)
        raise


def _in_float32(p: Path, bundle: ModelBundle) -> ModelBundle:
    """A float16/float64 model converted to float32, with a note; a complex one refused (precision.py)."""
    try:
        note = to_float32(bundle.model)
    except ModelError as e:
        raise LoadError(p, str(e), "save the model in float32 and open it again") from e
    if note:
        bundle.warnings = (*bundle.warnings, note)
    return bundle


def _load(p: Path, arch, arch_options, model_spec, trust, max_bytes) -> ModelBundle:
    check_readable(p, max_bytes)
    if arch and model_spec:
        raise LoadError(p, "give either a zoo architecture or a model file, not both")
    s = sniff(p)
    if s.kind in ("torch_weights", "legacy_pickle") and not s.unsafe_globals:
        try:
            obj = load_weights_only(p)
        except LoadError as e:
            if not getattr(e, "needs_trust", False):
                raise
            s = Sniffed("pickled_model", s.unsafe_globals, s.detail)
        else:
            return _from_object(p, obj, arch, arch_options, model_spec)
    if s.kind == "legacy_pickle":
        s = Sniffed("pickled_model", s.unsafe_globals, s.detail)
    if s.kind == "safetensors":
        return _from_safetensors(p, arch, arch_options, model_spec)
    return _load_trusted_kind(p, s, arch, arch_options, model_spec, trust)


# --- tier 2 -----------------------------------------------------------------------------

_TRUST_PROBLEMS = {
    "pickled_model": "a whole pickled model: loading it runs code from the file",
    "torchscript": "a TorchScript program: loading it runs code from the file",
    "pt2": "a torch.export program (.pt2): loading it runs code from the file",
}


def _trusted_source(p: Path, s: Sniffed, trust: bool | str) -> Path | bytes:
    if trust is False or trust is None or trust == "":
        raise TrustRequired(p, _TRUST_PROBLEMS[s.kind], info=info_for_trust(p, s, s.kind))
    if trust is True:
        return p
    data = p.read_bytes()  # hash and load the same bytes: no swap between check and use
    if hashlib.sha256(data).hexdigest() != str(trust).strip().lower():
        raise TrustRequired(p, "the file changed since it was trusted", info=info_for_trust(p, s, s.kind),
                            hint="confirm the new file before opening it")
    return data


def _load_trusted_kind(p, s, arch, arch_options, model_spec, trust) -> ModelBundle:
    src = _trusted_source(p, s, trust)
    if s.kind == "torchscript":
        return _bundle_from_module(p, _jit_load(p, src), probeable=False, extra=(
            "a TorchScript model: its inner layers cannot be probed (no hooks); only its input and "
            "output are shown",))
    if s.kind == "pt2":
        module, shape = _export_load(p, src)
        return _bundle_from_module(p, module, probeable=False, known_shape=shape, extra=(
            "a torch.export program: its layers are compiled into one graph and cannot be probed",))
    obj = load_trusted(src, p)
    module = obj if isinstance(obj, nn.Module) else None
    if module is None and isinstance(obj, dict):
        module = next((v for v in obj.values() if isinstance(v, nn.Module)), None)
    if module is not None:
        bundle = _bundle_from_module(p, module, probeable=True)
        # Kept in a safe copy's metadata: reopening those weights needs this class again.
        bundle.meta["model_class"] = f"{type(module).__module__}.{type(module).__qualname__}"
        return bundle
    bundle = _from_object(p, obj, arch, arch_options, model_spec)
    bundle.meta["trusted_load"] = True
    bundle.warnings = bundle.warnings + (TRUSTED_NOTE,)
    return bundle


def _jit_load(p: Path, src) -> nn.Module:
    import io

    try:
        return torch.jit.load(io.BytesIO(src) if isinstance(src, bytes) else str(src), map_location="cpu")
    except Exception as e:
        raise LoadError(p, f"the TorchScript file could not be loaded ({type(e).__name__}: {e})",
                        "it may be damaged or from a newer PyTorch") from e


def _export_load(p: Path, src):
    import io

    try:
        program = torch.export.load(io.BytesIO(src) if isinstance(src, bytes) else str(src))
        module = program.module()
    except Exception as e:
        raise LoadError(p, f"the .pt2 program could not be loaded ({type(e).__name__}: {e})",
                        "export it again with this PyTorch version, or save a state_dict instead") from e
    shape = None
    try:
        args = program.example_inputs[0] if program.example_inputs else ()
        if args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
            shape = tuple(int(x) for x in args[0].shape[1:])
    except Exception:  # noqa: BLE001 - example inputs are optional
        shape = None
    return module, shape


def _bundle_from_module(p: Path, module: nn.Module, *, probeable: bool, known_shape=None,
                        extra: tuple[str, ...] = ()) -> ModelBundle:
    sd = dict(module.state_dict())
    shape, names, mean, std, guessed = guessed_metadata(module, sd, known_shape=known_shape)
    warnings = tuple(w for w in (nonfinite_warning(sd),) if w) + extra + guessed + (TRUSTED_NOTE,)
    return ModelBundle(model=module, input_shape=shape, class_names=names, mean=mean, std=std,
                       arch=None, arch_options={}, source=str(p),
                       meta={"trusted_load": True}, warnings=warnings, probeable=probeable)


# --- tier 1 -----------------------------------------------------------------------------

def _from_object(p: Path, obj, arch, arch_options, model_spec) -> ModelBundle:
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        return _from_checkpoint(p, obj, arch, arch_options, model_spec)
    sd, key, extras = unwrap_state_dict(obj, p)
    return _from_state_dict(p, sd, arch, arch_options, model_spec, of_torch_file(key, extras))


def _build_named(p: Path, sd, arch, arch_options, model_spec, recorded_arch=None, recorded_class=None):
    """(model, arch label, options, options_inferred) for the model the caller or file names.

    ``recorded_class``: the class of the pickled model these weights were saved from (a safe copy).
    """
    if model_spec:
        return load_user_model(model_spec), str(model_spec), {}, False
    if arch:
        model, opts, inferred = build_matching(p, arch, arch_options, sd)
        return model, arch, opts, inferred
    if recorded_arch and ":" in recorded_arch:
        # A checkpoint never makes us run a .py file on its own say-so.
        raise ArchitectureRequired(p, f"the model was saved from your file {recorded_arch}; "
                                   "loading it runs that file", f"open it with the model given as {recorded_arch}")
    if isinstance(recorded_class, str) and recorded_class:
        module, _, name = recorded_class.rpartition(".")
        raise ArchitectureRequired(p, f"the weights were saved from a pickled {recorded_class}, and the file "
                                   "holds only weights", f"give that class as path/to/{module.rpartition('.')[2]}"
                                   f".py:{name}, or choose the zoo architecture it is")
    raise ArchitectureRequired(p, "the file holds only weights and does not say which model they belong to",
                               "choose a zoo architecture, or give your model as path/to/file.py:Name")


def _from_state_dict(p: Path, sd, arch, arch_options, model_spec, saved: Provenance | None = None) -> ModelBundle:
    saved = saved or Provenance()
    model, label, opts, inferred = _build_named(p, sd, arch, arch_options, model_spec)
    fitted = apply_state_dict(model, sd, p, label, holder=saved.holder)
    known = (opts["in_channels"], opts["input_size"], opts["input_size"]) if (
        "in_channels" in opts and "input_size" in opts) else None
    shape, names, mean, std, guessed = guessed_metadata(model, model.state_dict(), known_shape=known,
                                                        class_names=saved.class_names)
    warnings = tuple(w for w in (nonfinite_warning(sd),) if w) + saved.notes + _key_notes(fitted) + guessed
    if inferred:
        warnings += (f"{label} options inferred from the weights: {opts}",)
    meta = {"saved_with": dict(saved.info)} if saved.info else {}
    return ModelBundle(model=model, input_shape=shape, class_names=names, mean=mean, std=std,
                       arch=label, arch_options=opts, source=str(p), meta=meta, warnings=warnings)


def _key_notes(notes: tuple[str, ...]) -> tuple[str, ...]:
    """What loading adapted, as one line the app shows (empty when the file fitted as saved)."""
    return ("Loaded with adaptations: " + "; ".join(notes) + ".",) if notes else ()


MAX_INPUT_SIDE = 4096  # channels or pixels per side; anything larger is a damaged or hostile file


def _validated(p: Path, ck: dict) -> dict[str, Any]:
    """The checkpoint's metadata with types checked: a damaged or hostile file must not slip through."""
    def bad(what):
        return LoadError(p, f"the checkpoint's {what} is missing or damaged", "use an undamaged copy")

    version = ck.get("version")
    if not isinstance(version, int):
        raise bad("version")
    if version > CHECKPOINT_VERSION:
        raise LoadError(p, f"saved by a newer version of this program (format {version})", "update the program")
    shape = ck.get("input_shape")
    if not (isinstance(shape, (list, tuple)) and len(shape) == 3
            and all(isinstance(x, int) and not isinstance(x, bool) and 0 < x <= MAX_INPUT_SIDE for x in shape)):
        raise bad("input shape")
    names = ck.get("class_names")
    if not (isinstance(names, (list, tuple)) and names and all(isinstance(c, str) for c in names)):
        raise bad("class names")
    out = {"input_shape": tuple(shape), "class_names": tuple(names)}
    for key in ("mean", "std"):
        v = ck.get(key)
        if not (isinstance(v, (list, tuple)) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                           for x in v)):
            raise bad(key)
        out[key] = tuple(float(x) for x in v)
    if any(s == 0 or s != s or abs(s) == float("inf") for s in out["std"]) or any(
            m != m or abs(m) == float("inf") for m in out["mean"]):
        raise bad("normalisation")
    channels = out["input_shape"][0]
    for key in ("mean", "std"):
        if len(out[key]) not in (1, channels):
            raise LoadError(p, f"the checkpoint's normalisation {key} has {len(out[key])} values for "
                               f"{channels} input channel(s)", "the file is damaged or was edited by hand")
    arch = ck.get("arch")
    if arch is not None and not isinstance(arch, str):
        raise bad("architecture name")
    opts = ck.get("arch_options") or {}
    if not (isinstance(opts, dict) and all(isinstance(k, str) for k in opts)):
        raise bad("architecture options")
    meta = ck.get("meta") or {}
    out.update(arch=arch, arch_options=dict(opts), meta=dict(meta) if isinstance(meta, dict) else {})
    return out


def _from_checkpoint(p: Path, ck: dict, arch, arch_options, model_spec) -> ModelBundle:
    info = _validated(p, ck)
    sd = ck.get("state_dict")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise LoadError(p, "the checkpoint's weights are missing or damaged", "use an undamaged copy")
    recorded = info["arch"]
    if not (arch or model_spec) and recorded and ":" not in recorded:
        arch, arch_options = recorded, (arch_options or info["arch_options"])
    model, label, opts, inferred = _build_named(p, sd, arch, arch_options, model_spec, recorded,
                                                info["meta"].get("model_class"))
    fitted = apply_state_dict(model, sd, p, label)
    warnings = tuple(w for w in (nonfinite_warning(sd),) if w) + _key_notes(fitted)
    if inferred:
        warnings += (f"{label} options inferred from the weights: {opts}",)
    meta = info["meta"]
    if ck.get("training") is not None:
        meta["training_state"] = ck["training"]
    return ModelBundle(model=model, input_shape=info["input_shape"], class_names=info["class_names"],
                       mean=info["mean"], std=info["std"], arch=label, arch_options=opts, source=str(p),
                       meta=meta, warnings=warnings)


def _from_safetensors(p: Path, arch, arch_options, model_spec) -> ModelBundle:
    try:
        from safetensors import safe_open

        with safe_open(str(p), framework="pt", device="cpu") as f:
            header = dict(f.metadata() or {})
            sd = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise LoadError(p, f"the safetensors file is damaged ({type(e).__name__}: {e})",
                        "it may be truncated; use an undamaged copy") from e
    if not sd:
        raise LoadError(p, "the safetensors file holds no tensors")
    if header.get("format") == SAFETENSORS_FORMAT:
        ck = {"format": CHECKPOINT_FORMAT, "version": 1, "arch": header.get("arch") or None,
              "arch_options": parse_json_meta(header.get("arch_options"), {}),
              "class_names": parse_json_meta(header.get("class_names"), None),
              "input_shape": parse_json_meta(header.get("input_shape"), None),
              "mean": parse_json_meta(header.get("mean"), None), "std": parse_json_meta(header.get("std"), None),
              "meta": parse_json_meta(header.get("meta"), {}), "state_dict": sd}
        return _from_checkpoint(p, ck, arch, arch_options, model_spec)
    return _from_state_dict(p, sd, arch, arch_options, model_spec, of_safetensors(header))
