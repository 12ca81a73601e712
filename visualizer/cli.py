"""The headless command line beside the GUI.

    cnn-visualizer [FILE]                      the desktop app (optionally opening FILE)
    cnn-visualizer train --arch lenet5 --dataset digits --epochs 3 --out run.pt
    cnn-visualizer models                      the zoo, one line each
    cnn-visualizer info MODEL                  layer table of a zoo name, checkpoint or file.py:Name
    cnn-visualizer render MODEL [--input IMAGE] --out DIR   every view as PNG, no display
    cnn-visualizer health MODEL [--dataset D] [--json]      dead, saturated, vanishing, exploding layers
    cnn-visualizer --version

Errors print one line (no traceback) and exit non-zero.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()  # when the entry point was imported: "window visible within 3 s" counts from here

COMMANDS = ("train", "models", "info", "render", "health")
# `train` flags whose default is filled in only for a fresh run (argparse dest -> default).
TRAIN_DEFAULTS = {"arch": "lenet5", "dataset": "digits", "epochs": 3, "batch_size": 64, "optimizer": "sgd",
                  "lr": None, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0, "schedule": "none",
                  "grad_clip": None, "activation": "relu", "pooling": "max", "batchnorm": False, "dropout": 0.0,
                  "width": None, "input_size": None, "val_fraction": 0.1, "augment": False, "limit": None,
                  "seed": 0}


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(prog="cnn-visualizer", description="Watch a convolutional neural network work.")
    p.add_argument("-V", "--version", action="version", version=f"cnn-visualizer {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a model headless and save a checkpoint")
    # Defaults live in TRAIN_DEFAULTS, not here: a flag left at None was not typed, which is what
    # --resume needs to know (a typed flag must agree with the checkpoint; see core/resume.py).
    t.add_argument("--arch", help="zoo architecture (see `models`; default lenet5)")
    t.add_argument("--dataset", help="built-in name (digits, shapes, mnist) or a path to IDX files, CIFAR-10/100 "
                   "batches or an image folder (default digits, or the checkpoint's with --resume)")
    t.add_argument("--epochs", type=int, help="epochs to train (with --resume: the new total; default 3)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--optimizer", choices=("sgd", "adam", "adamw"))
    t.add_argument("--lr", type=float, help="learning rate (default: 0.01 for SGD, 0.001 otherwise)")
    t.add_argument("--momentum", type=float)
    t.add_argument("--nesterov", action="store_true", default=None)
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--schedule", choices=("none", "step", "cosine"))
    t.add_argument("--grad-clip", type=float)
    t.add_argument("--activation")
    t.add_argument("--pooling")
    t.add_argument("--batchnorm", action="store_true", default=None)
    t.add_argument("--dropout", type=float)
    t.add_argument("--width", type=float, help="channel width multiplier")
    t.add_argument("--input-size", type=int)
    t.add_argument("--val-fraction", type=float)
    t.add_argument("--augment", action="store_true", default=None, help="small rotations, shifts and scaling")
    t.add_argument("--limit", type=int, help="use only N items of the dataset (a seeded random subset)")
    t.add_argument("--seed", type=int)
    t.add_argument("--resume", default=None, help="continue from a checkpoint saved by `train`: its model, "
                   "optimizer, schedule, options and split are used, and a flag that contradicts them is refused")
    t.add_argument("--out", required=True, help="checkpoint to write (atomically)")
    t.add_argument("--run", default=None, metavar="RUN.cnnviz",
                   help="also record the run to this run file (every step's loss, the epochs; open it in the app)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--slim", action="store_true",
                   help="save the weights without optimizer/resume state (smaller; cannot --resume)")

    sub.add_parser("models", help="list the model zoo")

    i = sub.add_parser("info", help="print the layer table of a model")
    i.add_argument("model", help="zoo name, checkpoint file, path/to/file.py:Name, or model.onnx")
    i.add_argument("--arch", default=None, help="architecture for a bare state dict")
    i.add_argument("--input-size", type=int, default=None)
    i.add_argument("--in-channels", type=int, default=None)

    r = sub.add_parser("render", help="write every view as PNG without a display")
    r.add_argument("model", help="zoo name, checkpoint file, or path/to/file.py:Name")
    r.add_argument("--input", default=None, help="image to feed (default: a sample of the model's dataset)")
    r.add_argument("--arch", default=None, help="architecture for a bare state dict")
    r.add_argument("--out", required=True, help="folder for the PNGs")

    h = sub.add_parser("health", help="check every layer for dead, saturated, vanishing, exploding or "
                       "not-learning units on a batch of data")
    h.add_argument("model", help="zoo name, checkpoint file, or path/to/file.py:Name")
    h.add_argument("--dataset", default=None, help="data to measure on (default: the checkpoint's own "
                   "data set; digits for a zoo name)")
    h.add_argument("--arch", default=None, help="architecture for a bare state dict")
    h.add_argument("--input-size", type=int, default=None)
    h.add_argument("--in-channels", type=int, default=None)
    h.add_argument("--samples", type=int, default=256, help="batch size of the measurement (at least 256)")
    h.add_argument("--optimizer", default=None, choices=("sgd", "adam", "adamw"),
                   help="optimizer of the one throw-away step (default: the checkpoint's, else sgd)")
    h.add_argument("--lr", type=float, default=None, help="its learning rate (default: the checkpoint's, else 0.01)")
    h.add_argument("--seed", type=int, default=0, help="which samples are drawn")
    h.add_argument("--json", action="store_true", help="one JSON object per layer instead of the table")
    return p


def _mistyped_command(word: str) -> str | None:
    """The one-line error for ``cnn-visualizer trian``: a bare word that is neither a command nor a file.

    Anything with a dot or a slash is taken as a file name (the app then reports a missing
    file in its window), so only a bare word can be a mistyped subcommand.
    """
    if word.startswith("-") or "." in word or os.sep in word or os.path.exists(word):
        return None
    import difflib
    close = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return (f"cnn-visualizer: error: '{word}' is not a command or a file; {hint}"
            f"commands: {', '.join(COMMANDS)} (cnn-visualizer --help)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        from . import __version__
        print(f"cnn-visualizer {__version__}")
        return 0
    if argv and argv[0] not in COMMANDS and (msg := _mistyped_command(argv[0])):
        print(msg, file=sys.stderr)
        return 2
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        from .gui.app import run_gui  # the desktop app is the default command
        return run_gui(argv[0] if argv else None, argv)
    args = _parser().parse_args(argv)
    try:
        return {"train": cmd_train, "models": cmd_models, "info": cmd_info, "render": cmd_render,
                "health": cmd_health}[args.command](args)
    except KeyboardInterrupt:
        print("cnn-visualizer: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:   # none of ours: a user's model called sys.exit() (in its forward, say)
        from .core.engine.messages import describe_exit
        spec = getattr(args, "model", None) or ""
        model_file = spec.rpartition(":")[0] if ".py:" in spec else spec or None
        print(f"cnn-visualizer {args.command}: error: {describe_exit(e, model_file)}", file=sys.stderr)
        return 2
    except Exception as e:  # one clear line, never a traceback
        from .core.errors import LoadError, ModelError
        if not isinstance(e, (CliError, LoadError, ModelError, ValueError, OSError)):
            if os.environ.get("CNN_VISUALIZER_DEBUG"):
                raise
            msg = f"{type(e).__name__}: {e}"
        else:
            msg = str(e)
        from .core.errors import TrustRequired
        if isinstance(e, TrustRequired):
            msg = trust_refusal(e.path, msg)
        print(f"cnn-visualizer {args.command}: error: {msg}", file=sys.stderr)
        return 2


def trust_refusal(path, message: str) -> str:
    """The command line has no confirmation to give: say where one is."""
    return (f"{message}; the command line never runs code from a file: open it in the app "
            f"(cnn-visualizer {path}), which shows what it holds and asks first")


# --- models / info -------------------------------------------------------------------------------
def cmd_models(args) -> int:
    from .core.architectures import ARCHITECTURES
    width = max(len(n) for n in ARCHITECTURES)
    for name, spec in ARCHITECTURES.items():
        print(f"{name:<{width}}  {spec.description}")
    return 0


def resolve_model(spec: str, *, arch: str | None = None, input_size: int | None = None,
                  in_channels: int | None = None):
    """A ModelBundle from a zoo name, a checkpoint/state-dict file or ``file.py:Name``."""
    from .core.architectures import ARCHITECTURES, build_model
    from .core.checkpoint import load_model
    from .core.model_bundle import ModelBundle

    if spec in ARCHITECTURES:
        a = ARCHITECTURES[spec]
        size = input_size or a.default_input_size
        ch = in_channels or 1
        model = build_model(spec, in_channels=ch, input_size=size, width=a.default_width)
        return ModelBundle(model, (ch, size, size), tuple(str(k) for k in range(10)), arch=spec,
                           arch_options={"in_channels": ch, "input_size": size, "width": a.default_width})
    path, _, name = spec.rpartition(":")
    if path.endswith(".py") and name:
        from .core.assemble import user_model_bundle
        shape = None if input_size is None else (in_channels or 1, input_size, input_size)
        return user_model_bundle(spec, input_shape=shape)
    if not Path(spec).exists():
        raise CliError(f"{spec}: no such file, and not a zoo architecture "
                       f"({', '.join(ARCHITECTURES)}) or path/to/file.py:Name")
    return load_model(spec, arch=arch)


def cmd_info(args) -> int:
    from .core.introspect import introspect
    from .core.onnx import is_onnx_path
    if is_onnx_path(args.model):  # other frameworks' models: the layer table from the graph (needs [onnx])
        from .core.onnx import load_onnx
        shape = None if args.input_size is None else (args.in_channels or 1, args.input_size, args.input_size)
        onnx_bundle = load_onnx(args.model, input_shape=shape)
        onnx_bundle.graph.runner.close()
        print(format_layer_table(onnx_bundle.info))
        for w in onnx_bundle.warnings:
            print(f"warning: {w}", file=sys.stderr)
        return 0
    bundle = resolve_model(args.model, arch=args.arch, input_size=args.input_size, in_channels=args.in_channels)
    info = introspect(bundle.model, bundle.input_shape)
    print(format_layer_table(info))
    for w in bundle.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def format_layer_table(info) -> str:
    rows = [("layer", "kind", "output", "params", "detail")]
    for layer in info.layers:
        depth = layer.name.count(".")
        shape = "×".join(str(d) for d in layer.output_shape) if layer.output_shape else "-"
        name = "  " * depth + (layer.name.rsplit(".", 1)[-1] if depth else layer.name)
        rows.append((name + (" (f)" if layer.functional else ""), layer.kind, shape, f"{layer.params:,}", layer.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i != 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    c, h, w = info.input_shape
    lines.append(f"input {c}×{h}×{w}, {info.total_params:,} parameters")
    return "\n".join(lines)


# --- train ---------------------------------------------------------------------------------------
def cmd_train(args) -> int:
    """Train headless through the same engine as the window: the same settings give the same run."""
    import torch
    from tqdm import tqdm

    from .core.checkpoint import check_writable
    from .core.config import TrainConfig
    from .core.datasets import BUILTIN_DATASETS
    from .core.engine.engine import Engine
    from .core.resume import check_same_classes, saved_augment
    from .core.training import TrainingControl

    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    check_writable(args.out)  # a bad --out must fail now, not after the training it would have saved
    if args.run and os.path.exists(args.run):
        raise CliError(f"{args.run}: a run file already exists; give a new name for the run")
    given = {k: v for k, v in vars(args).items() if k in TRAIN_DEFAULTS and v is not None}
    bundle = resume_state = None
    if args.resume:
        bundle, resume_state, config, data_opts = _resumed(args, given)
        dataset = given.get("dataset") or bundle.meta.get("dataset")
        if not dataset or (dataset not in BUILTIN_DATASETS and not Path(dataset).exists()):
            raise CliError(f"{args.resume}: give --dataset, the data set it was trained on "
                           f"(the checkpoint names {dataset!r})")
    else:
        a = {**TRAIN_DEFAULTS, **given}
        lr = a["lr"] if a["lr"] is not None else (0.01 if a["optimizer"] == "sgd" else 0.001)
        config = TrainConfig(epochs=a["epochs"], batch_size=a["batch_size"], optimizer=a["optimizer"], lr=lr,
                             momentum=a["momentum"], nesterov=a["nesterov"], weight_decay=a["weight_decay"],
                             schedule=a["schedule"], grad_clip=a["grad_clip"], seed=a["seed"], snapshot_hz=0)
        data_opts = {k: a[k] for k in ("val_fraction", "augment", "limit")}
        dataset = a["dataset"]
    config.validate()  # before any slow loading
    augment = saved_augment(data_opts["augment"])   # a resumed run's own, as it was recorded
    bar = None
    problems: list[str] = []

    def on_event(name: str, payload) -> None:
        if name == "epoch_end":
            va = f", validation accuracy {payload.val_accuracy:.2%}" if payload.val_accuracy is not None else ""
            (bar.write if bar is not None else print)(
                f"epoch {payload.epoch + 1}/{config.epochs}: loss {payload.train_loss:.4f}, "
                f"accuracy {payload.train_accuracy:.2%}{va}", file=sys.stderr)
        elif name == "notice":
            print(f"note: {payload}", file=sys.stderr)
        elif name in ("failed", "diverged"):
            problems.append(payload if name == "failed" else payload.message)
        elif name == "trust_required":
            problems.append(trust_refusal(payload.path, payload.message))
        elif name == "architecture_required":
            problems.append(f"{payload.path}: holds bare weights; train a zoo architecture with --arch instead")

    engine = Engine(on_event)
    try:
        engine.set_dataset(dataset, limit=data_opts["limit"], augment=augment, seed=config.seed,
                           val_fraction=data_opts["val_fraction"])
        if args.resume:
            engine.load_bundle(bundle)
            check_same_classes(args.resume, bundle.class_names, str(dataset), engine.data.class_names)
        else:
            options = {k: a[k] for k in ("activation", "pooling", "batchnorm", "dropout")}
            for key in ("width", "input_size"):
                if a[key] is not None:
                    options[key] = a[key]
            engine.build(a["arch"], options, seed=config.seed)
        if problems:
            raise CliError(problems[0])
        bar = tqdm(total=0, unit="step", disable=args.quiet, dynamic_ncols=True, file=sys.stderr)

        def on_step(step: int, loss: float, acc: float) -> None:
            if bar.total == 0 and engine.trainer is not None:
                bar.reset(total=engine.trainer.total_steps)
                bar.update(step - 1)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.3f}")

        engine.train(config, TrainingControl(), on_step=on_step, resume_state=resume_state, run_path=args.run)
        bar.close()
        if problems:
            raise CliError(problems[0])
        engine.save(args.out, with_training_state=not args.slim)
    finally:
        if bar is not None:
            bar.close()
        engine.close()
    print(f"saved {args.out}")
    return 0


def _resumed(args, given: dict):
    """(bundle, training state, config, data settings) of the run ``--resume`` continues."""
    from .core.checkpoint import load_model
    from .core.resume import resumed_settings

    bundle = load_model(args.resume)
    state = bundle.meta.get("training_state")
    if not state:
        raise CliError(f"{args.resume}: holds no training state to resume from (was it saved by `train`?)")
    config, data_opts = resumed_settings(args.resume, bundle.arch, dict(bundle.arch_options), bundle.meta,
                                         state, given)
    config.snapshot_hz = 0
    return bundle, state, config, data_opts


# --- render --------------------------------------------------------------------------------------
def cmd_render(args) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np

    from .core.image_fit import to_model_input
    from .core.images import load_image
    from .core.inspector import Inspector
    from .core.snapshot import CaptureRequest

    bundle = resolve_model(args.model, arch=args.arch)
    label = None
    if args.input:
        img = load_image(args.input)
        image01, notes = to_model_input(img.array, bundle.input_shape)
        for n in (*img.notes, *notes):
            print(f"note: {n}", file=sys.stderr)
    else:
        image01, label = _default_probe_image(bundle)
    inspector = Inspector(bundle)
    try:
        convs = tuple(layer.name for layer in inspector.info.layers if layer.kind in ("conv", "depthwise_conv"))
        request = CaptureRequest(layers=("*",), filter_layers=convs, max_channels=64)
        probe = inspector.probe(request, np.asarray(image01, dtype=np.float32), label)
    finally:
        inspector.close()
    from PyQt6.QtWidgets import QApplication

    from .gui.render import render_views
    app = QApplication.instance() or QApplication([])
    paths = render_views(probe, None, args.out)
    del app
    for p in paths:
        print(p)
    return 0


def _default_probe_image(bundle):
    """A sample of the dataset the model was trained on, else a blank image."""
    import numpy as np

    from .core.assemble import data_for
    from .core.datasets import load_dataset
    name = bundle.meta.get("dataset")
    if name:
        try:
            ds = load_dataset(name, limit=200)
            data = data_for(bundle, ds, val_fraction=0.5, reuse_normalisation=True)
            return data.sample(0, split="val")
        except Exception as e:  # noqa: BLE001 - fall through to a blank image, but say why
            print(f"note: could not load dataset {name!r} for a sample ({e}); using a blank image", file=sys.stderr)
    return np.zeros(bundle.input_shape, dtype=np.float32), None


# --- health --------------------------------------------------------------------------------------
def cmd_health(args) -> int:
    import dataclasses

    import torch

    from .core.architectures import ARCHITECTURES
    from .core.assemble import data_for, new_model_bundle
    from .core.config import TrainConfig
    from .core.datasets import load_dataset
    from .core.health.measure import health_batch, measure_health
    from .core.health.text import format_health_table, health_json_lines
    from .core.inspector import Inspector

    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    if args.model in ARCHITECTURES:
        # Fresh weights shaped for the data: the health of an initialisation.
        ds = load_dataset(args.dataset or "digits", seed=args.seed)
        bundle = new_model_bundle(args.model, ds, input_size=args.input_size, seed=args.seed)
        trained = False
    else:
        bundle = resolve_model(args.model, arch=args.arch, input_size=args.input_size, in_channels=args.in_channels)
        name = args.dataset or bundle.meta.get("dataset")
        if not name:
            raise CliError(f"{args.model}: does not say which data it was trained on; give --dataset")
        ds = load_dataset(name, seed=args.seed)
        trained = bool(bundle.meta)   # our checkpoints carry their normalisation: measure it as trained
    if ds.skipped:
        print(f"note: skipped {len(ds.skipped)} unreadable item(s), e.g. {ds.skipped[0]}", file=sys.stderr)
    data = data_for(bundle, ds, val_fraction=0.0, reuse_normalisation=trained)
    saved = bundle.meta.get("config") if isinstance(bundle.meta.get("config"), dict) else {}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in saved.items() if k in known})
    if args.optimizer:
        config.optimizer = args.optimizer
        if args.lr is None and not saved:
            config.lr = 0.01 if args.optimizer == "sgd" else 0.001
    if args.lr is not None:
        config.lr = args.lr
    config.validate()
    x, y = health_batch(data, args.samples, seed=args.seed)
    with Inspector(bundle) as inspector:
        report = measure_health(inspector, x, y, config=config)
    if args.json:
        print(health_json_lines(report))
    else:
        print(format_health_table(report, f"health of {args.model} on {ds.name}"))
    for w in bundle.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0
