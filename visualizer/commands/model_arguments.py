"""The model arguments every command takes, and the one place that resolves them.

    MODEL                    a zoo name (lenet5; see `cnn-visualizer models`), a checkpoint or state
                             dict (.pt .pth .ckpt .safetensors), path/to/file.py:Name (your own class,
                             fresh weights), a model.onnx (info, render), or a run file RUN.cnnviz
                             (info, render)
    --arch NAME|file.py:Name the model a bare state dict's weights belong to (MODEL is then the file);
                             without MODEL it names the model itself (train --arch lenet5)
    --init WEIGHTS           start a zoo name or file.py:Name from these weights: the same as
                             WEIGHTS --arch MODEL
    --input-size N           the input's height and width where the model does not say
    --in-channels C          its channels, likewise
    --mean M[,M,M] --std S[,S,S]
                             the normalisation it was trained with (of [0, 1] pixels), where the
                             file does not say (bare weights, ONNX): one value, or one a channel
    --class-names FILE       its class names (one a line, or JSON), likewise

:func:`choose_model` turns what was typed into a :class:`ModelChoice` (or one line of
error), checked before anything slow happens. The read-only commands (info, render,
health) then build it with :func:`open_model`; ``train`` installs it into the engine with
:func:`install_model`, through the very calls the window makes, so a model trains the
same way from either. Nothing here imports torch at module level: the desktop app's
process starts through this package and must not load it.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import CliError

ZOO, USER, WEIGHTS, ONNX, RUN = "zoo", "user", "weights", "onnx", "run"
READ_ONLY_KINDS = (ONNX, RUN)     # looked at, never trained or back-propagated


def add_model_arguments(parser, *, optional: bool = False) -> None:
    """The model arguments, the same for every command (see the module docstring)."""
    parser.add_argument("model", nargs="?" if optional else None, metavar="MODEL",
                        help="zoo name, checkpoint or state dict, path/to/file.py:Name, model.onnx or RUN.cnnviz")
    parser.add_argument("--arch", default=None, metavar="NAME|file.py:Name",
                        help="the model a bare state dict belongs to (alone: the model itself)")
    parser.add_argument("--init", default=None, metavar="WEIGHTS",
                        help="start a zoo name or file.py:Name from these weights")
    parser.add_argument("--input-size", type=int, default=None, help="input height and width")
    parser.add_argument("--in-channels", type=int, default=None, help="input channels")
    parser.add_argument("--mean", default=None, metavar="M[,M,M]",
                        help="the per-channel mean the model was trained with, where its file does not say")
    parser.add_argument("--std", default=None, metavar="S[,S,S]", help="the per-channel std, likewise")
    parser.add_argument("--class-names", default=None, metavar="FILE",
                        help="its class names, one a line or JSON, where its file does not say")


@dataclass(frozen=True)
class ModelChoice:
    kind: str                           # ZOO, USER, WEIGHTS, ONNX or RUN
    text: str                           # what names it, for messages
    arch: str | None = None             # a zoo architecture: the model (ZOO) or the weights' model (WEIGHTS)
    model_spec: str | None = None       # path/to/file.py:Name: the model (USER) or the weights' model (WEIGHTS)
    path: str | None = None             # the weights, .onnx or run file
    input_size: int | None = None
    in_channels: int | None = None
    mean: tuple[float, ...] | None = None      # --mean/--std: the normalisation it was trained with
    std: tuple[float, ...] | None = None
    class_names: tuple[str, ...] = ()           # --class-names

    @property
    def fresh(self) -> bool:
        """New weights: the model learns its normalisation from the data, as a fresh zoo model does."""
        return self.kind in (ZOO, USER)

    def input_shape(self, channels: int | None = None) -> tuple[int, int, int] | None:
        """(C, H, W) from --input-size (C: --in-channels, else ``channels``, the data's, else 1)."""
        if self.input_size is None:
            return None
        return (self.in_channels or channels or 1, self.input_size, self.input_size)


def _is_zoo(text: str) -> bool:
    from ..core.architectures import ARCHITECTURES
    return text in ARCHITECTURES


def _is_model_spec(text: str) -> bool:
    path, sep, name = text.rpartition(":")
    return bool(sep) and path.endswith(".py") and name.isidentifier()


def is_run_file(text: str) -> bool:
    """A run file by its suffix, or by being an SQLite database (a run under another name)."""
    from ..core.record.run_schema import SQLITE_MAGIC, SUFFIX
    if text.lower().endswith(SUFFIX):
        return True
    try:
        with open(text, "rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _zoo_names() -> str:
    from ..core.architectures import ARCHITECTURES
    return ", ".join(ARCHITECTURES)


def _check_spec_file(spec: str) -> None:
    path = spec.rpartition(":")[0]
    if not Path(path).is_file():
        raise CliError(f"{spec}: no such model file {path}")


def choose_model(args, command: str, *, default: str | None = None) -> ModelChoice:
    """What the model arguments of ``args`` ask for, checked; CliError (one line) when they cannot be used.

    ``default``: the model when neither MODEL nor --arch is given (train: lenet5).
    """
    text, arch, init = getattr(args, "model", None), args.arch, args.init
    if text is None:
        text, arch = (arch if arch is not None else default), None
        if text is None:
            raise CliError("give a model: a zoo name, a checkpoint, path/to/file.py:Name, model.onnx or a run file")
    from ..core.onnx import is_onnx_path
    if _is_zoo(text):
        kind = ZOO
    elif _is_model_spec(text):
        _check_spec_file(text)
        kind = USER
    elif is_onnx_path(text):
        kind = ONNX
    elif is_run_file(text):
        kind = RUN
    elif Path(text).exists():
        kind = WEIGHTS
    else:
        raise CliError(f"{text}: no such file, and not a zoo architecture ({_zoo_names()}) "
                       "or path/to/file.py:Name")
    shape = {"input_size": args.input_size, "in_channels": args.in_channels, **_input_format(args, text, kind)}
    for flag, value in (("--input-size", args.input_size), ("--in-channels", args.in_channels)):
        if value is not None and not 0 < value <= 4096:
            raise CliError(f"{flag} must be between 1 and 4096, not {value}")
    if kind in (ONNX, RUN) and command not in ("info", "render"):
        raise CliError(_read_only_refusal(text, kind, command))
    if arch is not None and kind != WEIGHTS:
        what = {ZOO: "a zoo architecture", USER: "your model class", ONNX: "an ONNX model", RUN: "a run file"}[kind]
        tail = " (give its weights with --init FILE)" if kind in (ZOO, USER) else ""
        raise CliError(f"--arch names the model of a weights file, but {text} is {what} itself{tail}")
    if init is not None:
        if kind not in (ZOO, USER):
            raise CliError(f"--init gives the weights of a zoo name or path/to/file.py:Name, not of {text}")
        if not Path(init).exists():
            raise CliError(f"{init}: no such weights file")
        arch, text, kind = text, init, WEIGHTS
    if kind == WEIGHTS:
        if arch is not None and not _is_zoo(arch):
            if not _is_model_spec(arch):
                raise CliError(f"--arch {arch}: not a zoo architecture ({_zoo_names()}) or path/to/file.py:Name")
            _check_spec_file(arch)
        spec = arch if arch is not None and _is_model_spec(arch) else None
        return ModelChoice(WEIGHTS, text, arch=None if spec else arch, model_spec=spec, path=text, **shape)
    if kind == ZOO:
        return ModelChoice(ZOO, text, arch=text, **shape)
    if kind == USER:
        return ModelChoice(USER, text, model_spec=text, **shape)
    return ModelChoice(kind, text, path=text, **shape)


def _input_format(args, text: str, kind: str) -> dict:
    """--mean, --std and --class-names, read and checked as far as they can be without the model."""
    from ..core.errors import LoadError
    from ..core.input_format import parse_numbers, read_class_names
    mean, std, names = getattr(args, "mean", None), getattr(args, "std", None), getattr(args, "class_names", None)
    if mean is None and std is None and names is None:
        return {}
    if kind == RUN:
        raise CliError(f"{text}: a run file records the input its model took; --mean, --std and --class-names "
                       "are for a model")
    out: dict = {}
    for flag, value in (("mean", mean), ("std", std)):
        if value is not None:
            try:
                out[flag] = parse_numbers(value)
            except ValueError as exc:
                raise CliError(f"--{flag} {value}: {exc}") from None
    if names is not None:
        try:
            out["class_names"] = read_class_names(names)
        except LoadError as exc:
            raise CliError(f"--class-names: {exc}") from None
    return out


def with_input_format(choice: ModelChoice, bundle):
    """``bundle`` given the normalisation and class names of --mean/--std/--class-names (the rest its own)."""
    if choice.mean is None and choice.std is None and not choice.class_names:
        return bundle
    from ..core.input_format import checked_input_format
    try:
        bundle.mean, bundle.std, names = checked_input_format(
            bundle.input_shape[0], bundle.num_classes, choice.mean or bundle.mean, choice.std or bundle.std,
            choice.class_names)
    except ValueError as exc:
        raise CliError(f"{choice.text}: {exc}") from None
    bundle.class_names = names or bundle.class_names
    return bundle


def _read_only_refusal(text: str, kind: str, command: str) -> str:
    if kind == ONNX:
        from ..core.onnx import TRAINING_REFUSAL
        if command == "train":
            return f"{text}: {TRAINING_REFUSAL}"
        return (f"{text}: the {command} report needs a backward pass, and ONNX models are opened for "
                "inspection only (info, render)")
    return f"{text}: a run file records a training run; `info` and `render` read it, {command} needs a model"


def open_model(choice: ModelChoice, dataset=None, *, seed: int = 0):
    """The chosen model as a ModelBundle (an OnnxBundle for ONNX), shaped for ``dataset`` (an ImageDataset)
    when one is given: a zoo model gets its channels and classes, your class its class names. Fresh
    weights are seeded by ``seed``, as the engine seeds them."""
    from ..core.checkpoint.safe_load import ArchitectureRequired

    channels = int(dataset.native_shape[0]) if dataset is not None else None
    if choice.kind == ZOO:
        from ..core.assemble import new_model_bundle, zoo_bundle
        if dataset is not None:
            if choice.in_channels is not None and choice.in_channels != channels:
                raise CliError(f"--in-channels {choice.in_channels} does not fit {dataset.name}, which has "
                               f"{channels} channel(s)")
            return with_input_format(choice, new_model_bundle(choice.arch, dataset, input_size=choice.input_size,
                                                              seed=seed))
        return with_input_format(choice, zoo_bundle(choice.arch, in_channels=choice.in_channels or 1, seed=seed,
                                                    class_names=tuple(str(k) for k in range(10)),
                                                    input_size=choice.input_size))
    if choice.kind == USER:
        import torch

        from ..core.assemble import user_model_bundle
        torch.manual_seed(seed)
        return with_input_format(choice, user_model_bundle(
            choice.model_spec, input_shape=choice.input_shape(channels),
            class_names=tuple(dataset.class_names) if dataset is not None else (),
            shape_hint=tuple(dataset.native_shape) if dataset is not None else None))
    if choice.kind == ONNX:
        from ..core.onnx import load_onnx
        return with_input_format(choice, load_onnx(choice.path, input_shape=choice.input_shape(channels)))
    from ..core.checkpoint import load_model
    try:
        bundle = load_model(choice.path, arch=choice.arch, model_spec=choice.model_spec)
    except ArchitectureRequired as e:
        hint = f" ({e.hint})" if e.hint else ""
        raise CliError(f"{e.path}: {e.problem}; name its model with --arch NAME or --arch path/to/file.py:Name"
                       f"{hint}") from e
    shape = choice.input_shape(bundle.input_shape[0])
    if shape is not None:
        bundle = dataclasses.replace(bundle, input_shape=shape)
    return with_input_format(choice, bundle)


def install_model(choice: ModelChoice, engine, *, options: dict, seed: int) -> None:
    """Make the chosen model the engine's, as the window would: a zoo build (``options``: its model
    options), your class with fresh weights seeded by ``seed``, or a weights file. The engine's data
    set must be set first: the model is shaped for it."""
    if choice.kind in READ_ONLY_KINDS:
        raise CliError(_read_only_refusal(choice.text, choice.kind, "train"))
    _install(choice, engine, options=options, seed=seed)
    if engine.bundle is not None and (choice.mean is not None or choice.std is not None or choice.class_names):
        b = engine.bundle
        engine.set_input_format(choice.mean or b.mean, choice.std or b.std, choice.class_names)


def _install(choice: ModelChoice, engine, *, options: dict, seed: int) -> None:
    if choice.kind == ZOO:
        opts = dict(options)
        if choice.input_size is not None:
            opts["input_size"] = choice.input_size
        engine.build(choice.arch, opts, seed=seed)
        return
    if options:
        flags = ", ".join("--" + k.replace("_", "-") for k in sorted(options))
        raise CliError(f"{flags}: model options build a zoo architecture; {choice.text} defines its own layers")
    if choice.kind == USER:
        channels = int(engine.data.native_shape[0]) if engine.data is not None else None
        engine.load_user_model(choice.model_spec, input_shape=choice.input_shape(channels), seed=seed)
        return
    if choice.input_size is not None:
        raise CliError(f"--input-size: {choice.text} carries its own input shape")
    kwargs = {k: v for k, v in (("arch", choice.arch), ("model_spec", choice.model_spec)) if v}
    engine.load_file(os.fspath(choice.path), **kwargs)
