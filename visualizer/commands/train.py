"""``cnn-visualizer train [MODEL] --dataset D --out run.pt``: train headless through the window's engine.

Any PyTorch model the model arguments name trains the same way: a zoo architecture built
for the data, your own ``file.py:Name`` (fresh weights, or ``--init weights.pt``), or a
checkpoint or state dict to continue from. The engine (``core/engine/engine.py``) does
the rest exactly as for the window, so the same settings give the same run and the same
checkpoint. ``--resume`` continues a run saved by ``train`` bit for bit.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import CliError, trust_refusal
from .model_arguments import ZOO, add_model_arguments, choose_model, install_model

# Flags whose default is filled in only for a fresh run (argparse dest -> default).
TRAIN_DEFAULTS = {"arch": "lenet5", "dataset": "digits", "epochs": 3, "batch_size": 64, "optimizer": "sgd",
                  "lr": None, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0, "schedule": "none",
                  "grad_clip": None, "activation": "relu", "pooling": "max", "batchnorm": False, "dropout": 0.0,
                  "width": None, "input_size": None, "val_fraction": 0.1, "augment": False, "limit": None,
                  "seed": 0}
ZOO_OPTIONS = ("activation", "pooling", "batchnorm", "dropout", "width")   # how a zoo architecture is built


def add_parser(sub) -> None:
    t = sub.add_parser("train", help="train a model headless and save a checkpoint")
    # Defaults live in TRAIN_DEFAULTS, not here: a flag left at None was not typed, which is what
    # --resume needs to know (a typed flag must agree with the checkpoint; see core/resume.py).
    add_model_arguments(t, optional=True)
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
    t.add_argument("--activation", help="zoo architectures: the activation function")
    t.add_argument("--pooling", help="zoo architectures: max or avg pooling")
    t.add_argument("--batchnorm", action="store_true", default=None, help="zoo architectures: with BatchNorm")
    t.add_argument("--dropout", type=float, help="zoo architectures: dropout before the classifier")
    t.add_argument("--width", type=float, help="zoo architectures: channel width multiplier")
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


def run(args) -> int:
    """Train through the same engine as the window: the same settings give the same run."""
    import torch

    from ..core.checkpoint import check_writable
    from ..core.config import TrainConfig
    from ..core.datasets import BUILTIN_DATASETS

    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    check_writable(args.out)  # a bad --out must fail now, not after the training it would have saved
    if args.run and os.path.exists(args.run):
        raise CliError(f"{args.run}: a run file already exists; give a new name for the run")
    given = {k: v for k, v in vars(args).items() if k in TRAIN_DEFAULTS and v is not None}
    bundle = resume_state = choice = None
    if args.resume:
        if args.model or args.init:
            raise CliError("--resume continues the checkpoint's own model: give no MODEL or --init with it")
        bundle, resume_state, config, data_opts = _resumed(args, given)
        dataset = given.get("dataset") or bundle.meta.get("dataset")
        if not dataset or (dataset not in BUILTIN_DATASETS and not Path(dataset).exists()):
            raise CliError(f"{args.resume}: give --dataset, the data set it was trained on "
                           f"(the checkpoint names {dataset!r})")
    else:
        choice = choose_model(args, "train", default=TRAIN_DEFAULTS["arch"])
        a = {**TRAIN_DEFAULTS, **given}
        lr = a["lr"] if a["lr"] is not None else (0.01 if a["optimizer"] == "sgd" else 0.001)
        config = TrainConfig(epochs=a["epochs"], batch_size=a["batch_size"], optimizer=a["optimizer"], lr=lr,
                             momentum=a["momentum"], nesterov=a["nesterov"], weight_decay=a["weight_decay"],
                             schedule=a["schedule"], grad_clip=a["grad_clip"], seed=a["seed"], snapshot_hz=0)
        data_opts = {k: a[k] for k in ("val_fraction", "augment", "limit")}
        dataset = a["dataset"]
        if choice.kind == ZOO:
            options = {k: a[k] for k in ZOO_OPTIONS if a[k] is not None}
        else:
            options = {k: given[k] for k in ZOO_OPTIONS if k in given}   # typed for a model that has its own
    config.validate()  # before any slow loading
    from ..core.resume import saved_augment
    augment = saved_augment(data_opts["augment"])   # a resumed run's own, as it was recorded
    problems: list[str] = []
    progress = _Progress(config, quiet=args.quiet)
    from ..core.engine.engine import Engine
    engine = Engine(lambda name, payload: _on_event(name, payload, progress, problems))
    try:
        engine.set_dataset(dataset, limit=data_opts["limit"], augment=augment, seed=config.seed,
                           val_fraction=data_opts["val_fraction"])
        if args.resume:
            from ..core.resume import check_same_classes
            engine.load_bundle(bundle)
            check_same_classes(args.resume, bundle.class_names, str(dataset), engine.data.class_names)
        else:
            install_model(choice, engine, options=options, seed=config.seed)
        if problems:
            raise CliError(problems[0])
        from ..core.training import TrainingControl
        progress.start()
        engine.train(config, TrainingControl(), on_step=lambda *a: progress.step(engine, *a),
                     resume_state=resume_state, run_path=args.run)
        progress.close()
        if problems:
            raise CliError(problems[0])
        engine.save(args.out, with_training_state=not args.slim)
    finally:
        progress.close()
        engine.close()
    print(f"saved {args.out}")
    return 0


class _Progress:
    """The progress bar and the epoch lines on stderr."""

    def __init__(self, config, *, quiet: bool):
        self.config, self.quiet, self.bar = config, quiet, None

    def start(self) -> None:
        from tqdm import tqdm
        self.bar = tqdm(total=0, unit="step", disable=self.quiet, dynamic_ncols=True, file=sys.stderr)

    def step(self, engine, step: int, loss: float, acc: float) -> None:
        bar = self.bar
        if bar.total == 0 and engine.trainer is not None:
            bar.reset(total=engine.trainer.total_steps)
            bar.update(step - 1)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.3f}")

    def write(self, line: str) -> None:
        (self.bar.write if self.bar is not None else print)(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _on_event(name: str, payload, progress: _Progress, problems: list[str]) -> None:
    if name == "epoch_end":
        va = f", validation accuracy {payload.val_accuracy:.2%}" if payload.val_accuracy is not None else ""
        progress.write(f"epoch {payload.epoch + 1}/{progress.config.epochs}: loss {payload.train_loss:.4f}, "
                       f"accuracy {payload.train_accuracy:.2%}{va}")
    elif name == "notice":
        print(f"note: {payload}", file=sys.stderr)
    elif name in ("failed", "diverged"):
        problems.append(payload if name == "failed" else payload.message)
    elif name == "trust_required":
        problems.append(trust_refusal(payload.path, payload.message))
    elif name == "architecture_required":
        problems.append(f"{payload.message}; name the model of these weights with --arch NAME or "
                        "--arch path/to/file.py:Name")


def _resumed(args, given: dict):
    """(bundle, training state, config, data settings) of the run ``--resume`` continues."""
    from ..core.checkpoint import load_model
    from ..core.resume import resumed_settings

    bundle = load_model(args.resume)
    state = bundle.meta.get("training_state")
    if not state:
        raise CliError(f"{args.resume}: holds no training state to resume from (was it saved by `train`?)")
    config, data_opts = resumed_settings(args.resume, bundle.arch, dict(bundle.arch_options), bundle.meta,
                                         state, given)
    config.snapshot_hz = 0
    return bundle, state, config, data_opts
