"""``cnn-visualizer render MODEL --out DIR``: every view as a PNG, without a display.

For a model: one probe pass on ``--input`` (else the first sample of its data), and,
since no training ran here, the gradient view from one looking-only backward pass on a
batch of that data (``core/gradient_pass.py``): nothing is left empty that the data can
draw. For a run file: the recorded snapshot at or before ``--step`` (default the last),
with the loss curve of the run's own step table up to it.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from .errors import CliError
from .model_arguments import ONNX, RUN, add_model_arguments, choose_model

GRADIENT_BATCH = 64      # samples of the looking-only backward pass


def add_parser(sub) -> None:
    r = sub.add_parser("render", help="write every view as PNG without a display")
    add_model_arguments(r)
    r.add_argument("--input", default=None, help="image to feed (default: a sample of the model's data set)")
    r.add_argument("--dataset", default=None, help="data for the probe image and the gradient view's backward "
                   "pass (default: the checkpoint's own data set; digits for a zoo name)")
    r.add_argument("--limit", type=int, default=None, help="read only N items of the data set")
    r.add_argument("--step", type=int, default=None, help="a run file's step to draw: the snapshot at or before "
                   "it (default: the last)")
    r.add_argument("--out", required=True, help="folder for the PNGs")


def run(args) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    choice = choose_model(args, "render")
    if choice.kind == RUN:
        if args.input or args.dataset:
            raise CliError("--input and --dataset do not apply to a run file: its snapshots are drawn as recorded")
        from .runs import recorded_step
        at, probe, training, epochs = recorded_step(choice.path, args.step)
        if args.step is not None and at != args.step:
            print(f"note: the last snapshot at or before step {args.step} is the one at step {at}", file=sys.stderr)
    else:
        if args.step is not None:
            raise CliError("--step picks a recorded step of a run file (RUN.cnnviz)")
        probe, training = _look(choice, args)
        epochs = ()
    from PyQt6.QtWidgets import QApplication

    from ..gui.render import render_views
    app = QApplication.instance() or QApplication([])
    paths = render_views(probe, training, args.out, epochs=epochs)
    del app
    for p in paths:
        print(p)
    return 0


def _look(choice, args):
    """(ProbeSnapshot, TrainingSnapshot or None) of a model nobody trained here."""
    from .model_data import open_with_data
    looked = open_with_data(choice, args.dataset, limit=args.limit)
    bundle, data = looked.bundle, looked.data
    image01, label = _probe_image(args.input, bundle, data)
    if choice.kind == ONNX:
        return _look_onnx(bundle, image01, label), None
    from ..core.inspector import Inspector
    from ..core.snapshot import CaptureRequest

    with Inspector(bundle) as inspector:
        request = CaptureRequest(layers=("*",), filter_layers=tuple(n for n, _ in inspector.conv_layers),
                                 max_channels=64)
        probe = inspector.probe(request, image01, label)
        training = _one_backward_pass(inspector, bundle, data) if data is not None else None
    if data is None:
        print("note: no data set to run a backward pass on, so the gradient view stays empty; give --dataset",
              file=sys.stderr)
    for w in bundle.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return probe, training


def _probe_image(path, bundle, data):
    if path:
        from ..core.image_fit import to_model_input
        from ..core.images import load_image
        img = load_image(path)
        image01, notes = to_model_input(img.array, bundle.input_shape)
        for n in (*img.notes, *notes):
            print(f"note: {n}", file=sys.stderr)
        return np.asarray(image01, dtype=np.float32), None
    found = data.probe_sample(0) if data is not None else None
    if found is None:
        return np.zeros(bundle.input_shape, np.float32), None
    return found


def _look_onnx(bundle, image01, label):
    from ..core.onnx import OnnxInspector
    from ..core.snapshot import CaptureRequest
    inspector = OnnxInspector(bundle)
    try:
        convs = tuple(layer.name for layer in inspector.info.layers if layer.kind in ("conv", "depthwise_conv"))
        probe = inspector.probe(CaptureRequest(layers=("*",), filter_layers=convs, max_channels=64), image01, label)
    finally:
        inspector.close()
    print("note: an ONNX model has no backward pass here, so the gradient view stays empty", file=sys.stderr)
    for w in bundle.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return probe


def _one_backward_pass(inspector, bundle, data):
    """A TrainingSnapshot of the gradients one step on a batch of ``data`` would see (no step is taken)."""
    from ..core.gradient_pass import batch_gradients, data_batch
    from ..core.snapshot import TrainingSnapshot, frozen_array
    from .model_data import saved_config

    n = min(GRADIENT_BATCH, len(data.train))
    x, y = data_batch(data, n)
    config = saved_config(bundle)      # the update ratios of the optimizer it was trained with
    measured = batch_gradients(inspector, x, y, config=config)
    step = int(bundle.meta.get("steps") or 0)
    history = frozen_array(np.array([[step, measured.loss, measured.accuracy]], np.float32))
    epoch = max(int(bundle.meta.get("epochs") or 0) - 1, 0)    # the checkpoint counts epochs done; this is 0-based
    return TrainingSnapshot(step=step, epoch=epoch, batch=0, batches_per_epoch=0,
                            total_steps=step, loss=measured.loss, accuracy=measured.accuracy, lr=config.lr,
                            samples_per_sec=0.0, history=history, gradients=measured.stats, probe=None)
