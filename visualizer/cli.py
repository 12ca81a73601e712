"""The headless command line beside the GUI.

    cnn-visualizer [FILE]                      the desktop app (optionally opening FILE)
    cnn-visualizer train --arch lenet5 --dataset digits --epochs 3 --out run.pt
    cnn-visualizer models                      the zoo, one line each
    cnn-visualizer info MODEL                  layer table of a zoo name, checkpoint or file.py:Name
    cnn-visualizer render MODEL [--input IMAGE] --out DIR   every view as PNG, no display

Errors print one line (no traceback) and exit non-zero.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()  # when the entry point was imported: "window visible within 3 s" counts from here

COMMANDS = ("train", "models", "info", "render")


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnn-visualizer", description="Watch a convolutional neural network work.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a model headless and save a checkpoint")
    t.add_argument("--arch", default="lenet5", help="zoo architecture (see `models`)")
    t.add_argument("--dataset", default="digits", help="built-in name (digits, shapes, mnist) or a path "
                   "to IDX files, CIFAR-10 batches or an image folder")
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "adamw"))
    t.add_argument("--lr", type=float, default=None, help="learning rate (default: 0.01 for SGD, 0.001 otherwise)")
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--nesterov", action="store_true")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--schedule", default="none", choices=("none", "step", "cosine"))
    t.add_argument("--grad-clip", type=float, default=None)
    t.add_argument("--activation", default="relu")
    t.add_argument("--pooling", default="max")
    t.add_argument("--batchnorm", action="store_true")
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--width", type=float, default=None, help="channel width multiplier")
    t.add_argument("--input-size", type=int, default=None)
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument("--augment", action="store_true", help="small rotations, shifts and scaling")
    t.add_argument("--limit", type=int, default=None, help="use only the first N items of the dataset")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", default=None, help="continue from a checkpoint saved by `train`")
    t.add_argument("--out", required=True, help="checkpoint to write (atomically)")
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
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        from .gui.app import run_gui  # the desktop app is the default command
        return run_gui(argv[0] if argv else None, argv)
    args = _parser().parse_args(argv)
    try:
        return {"train": cmd_train, "models": cmd_models, "info": cmd_info, "render": cmd_render}[args.command](args)
    except KeyboardInterrupt:
        print("cnn-visualizer: interrupted", file=sys.stderr)
        return 130
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
            # The command line has no confirmation to give: say where one is.
            msg += ("; the command line never runs code from a file: open it in the app "
                    f"(cnn-visualizer {e.path}), which shows what it holds and asks first")
        print(f"cnn-visualizer {args.command}: error: {msg}", file=sys.stderr)
        return 2


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
    import torch
    from tqdm import tqdm

    from .core.assemble import data_for, new_model_bundle
    from .core.checkpoint import load_model, save_checkpoint
    from .core.config import TrainConfig
    from .core.datasets import Augment, load_dataset
    from .core.snapshot import Diverged, EpochEnd
    from .core.training import Trainer

    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    lr = args.lr if args.lr is not None else (0.01 if args.optimizer == "sgd" else 0.001)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=lr,
                         momentum=args.momentum, nesterov=args.nesterov, weight_decay=args.weight_decay,
                         schedule=args.schedule, grad_clip=args.grad_clip, seed=args.seed, snapshot_hz=0)
    config.validate()  # before any slow loading
    ds = load_dataset(args.dataset, seed=args.seed, limit=args.limit)
    if ds.skipped:
        print(f"note: skipped {len(ds.skipped)} unreadable item(s), e.g. {ds.skipped[0]}", file=sys.stderr)
    augment = Augment(rotation=10.0, translation=0.1, scale=0.1) if args.augment else Augment()
    resume_state = None
    if args.resume:
        bundle = load_model(args.resume)
        resume_state = bundle.meta.get("training_state")
        if not resume_state:
            raise CliError(f"{args.resume}: holds no training state to resume from (was it saved by `train`?)")
        data = data_for(bundle, ds, val_fraction=args.val_fraction, augment=augment, seed=args.seed,
                        reuse_normalisation=True)
    else:
        options = {"activation": args.activation, "pooling": args.pooling, "batchnorm": args.batchnorm,
                   "dropout": args.dropout}
        if args.width is not None:
            options["width"] = args.width
        bundle = new_model_bundle(args.arch, ds, input_size=args.input_size, seed=args.seed, **options)
        data = data_for(bundle, ds, val_fraction=args.val_fraction, augment=augment, seed=args.seed)
    trainer = Trainer(bundle, data, config)
    if resume_state:
        try:
            trainer.load_state_dict(resume_state)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            trainer.close()
            from .core.errors import LoadError
            raise LoadError(args.resume, f"its training state is damaged or does not fit this run ({e})",
                            "train from scratch without --resume, or use another checkpoint") from e
    bar = tqdm(total=trainer.total_steps, initial=trainer.step, unit="step", disable=args.quiet,
               dynamic_ncols=True, file=sys.stderr)
    trainer.on_step = lambda step, loss, acc: (bar.update(1), bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.3f}"))
    last_epoch = None
    try:
        for event in trainer.run():
            if isinstance(event, EpochEnd):
                last_epoch = event
                va = f", validation accuracy {event.val_accuracy:.2%}" if event.val_accuracy is not None else ""
                bar.write(f"epoch {event.epoch + 1}/{config.epochs}: loss {event.train_loss:.4f}, "
                          f"accuracy {event.train_accuracy:.2%}{va}")
            elif isinstance(event, Diverged):
                bar.close()
                raise CliError(event.message)
    finally:
        bar.close()
        trainer.close()
    bundle.meta.update({
        "dataset": args.dataset if not Path(args.dataset).exists() else Path(args.dataset).name,
        "epochs": trainer.epoch, "steps": trainer.step, "config": config.to_dict(), "seed": args.seed,
        "val_accuracy": None if last_epoch is None else last_epoch.val_accuracy,
    })
    bundle.meta.pop("training_state", None)
    save_checkpoint(args.out, bundle, training_state=None if args.slim else trainer.state_dict())
    print(f"saved {args.out}")
    return 0


# --- render --------------------------------------------------------------------------------------
def cmd_render(args) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np

    from .core.images import load_image, to_model_input
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
