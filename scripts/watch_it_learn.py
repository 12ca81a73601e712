"""Measure a "watch it learn" recipe: train headless and save what the filter view shows over time.

    .venv/bin/python scripts/watch_it_learn.py                  # the recipe, in real time (~3 minutes)
    .venv/bin/python scripts/watch_it_learn.py --fast           # the same steps without slow motion
    .venv/bin/python scripts/watch_it_learn.py --set lr=0.003 --set batch_size=64 --fast --out out/try

Trains with ``visualizer.core.training.Trainer`` and the recipe's real ``TrainConfig`` (its
``max_steps_per_sec`` paces the run as in the app). At each moment of training time
(default 0, 10, 30, 60, 120, 180 s) it takes the same capture the app takes and renders it
with the app's own ``FilterView``: the first-layer kernels and their change since the start.
``--fast`` drops the pacing and takes the capture at step ``seconds * max_steps_per_sec``
(the step the paced run reaches at that moment, minus its small lag), so that recipes can
be compared quickly. Writes into ``--out``: ``weights_<t>s.png``, ``change_<t>s.png``,
``montage.png`` (all of them in one figure), ``loss.csv`` (every step) and ``summary.json``
(the loss, the relative filter change and two measures of structure per moment).

Structure measures, per filter, averaged over the layer's filters (random filters score low):
- coherence: how strongly the filter's gradients share one orientation (structure tensor,
  (l1 - l2) / (l1 + l2)); an edge or stroke detector is near 1, white noise about 0.3;
- smoothness: correlation of neighbouring weights (0 for white noise, 1 for a smooth ramp).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# numpy and torch read OMP_NUM_THREADS when first imported: the settings above come first.
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from visualizer.core.assemble import data_for, new_model_bundle  # noqa: E402
from visualizer.core.config import TrainConfig  # noqa: E402
from visualizer.core.datasets import load_dataset  # noqa: E402
from visualizer.core.recipes import RECIPES  # noqa: E402
from visualizer.core.snapshot import CaptureRequest, Diverged, EpochEnd  # noqa: E402
from visualizer.core.training import Trainer  # noqa: E402

DEFAULT_TIMES = (0, 10, 30, 60, 120, 180)


# ------------------------------------------------------------------ structure measures

def coherence(w: np.ndarray) -> float:
    """Mean over filters of the structure-tensor coherence of each (kh, kw) kernel."""
    out = []
    for k in w.reshape(-1, *w.shape[-2:]):
        gy, gx = np.gradient(k.astype(np.float64))
        jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
        trace = jxx + jyy
        out.append(np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / trace if trace > 0 else 0.0)
    return float(np.mean(out))


def smoothness(w: np.ndarray) -> float:
    """Mean over filters of the correlation between horizontally and vertically neighbouring weights."""
    out = []
    for k in w.reshape(-1, *w.shape[-2:]).astype(np.float64):
        a = np.concatenate([k[:, :-1].ravel(), k[:-1, :].ravel()])
        b = np.concatenate([k[:, 1:].ravel(), k[1:, :].ravel()])
        out.append(np.corrcoef(a, b)[0, 1] if a.std() > 0 and b.std() > 0 else 0.0)
    return float(np.mean(out))


# ------------------------------------------------------------------ the run

def parse_overrides(items: list[str]) -> dict:
    types = {f.name: f.type for f in fields(TrainConfig)}
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in types:
            raise SystemExit(f"--set {item}: {key!r} is not a TrainConfig field ({', '.join(types)})")
        kind = str(types[key])
        if "bool" in kind:
            out[key] = value.lower() in ("1", "true", "yes")
        elif "int" in kind and "float" not in kind:
            out[key] = int(value)
        elif "float" in kind:
            out[key] = None if value.lower() == "none" else float(value)
        else:
            out[key] = value
    return out


def train_and_capture(recipe, config: TrainConfig, times, fast: bool, log):
    """[(t, step, loss_recent, ProbeSnapshot)] at each moment of training time, and every step's loss."""
    ds = load_dataset(recipe.dataset, seed=config.seed)
    bundle = new_model_bundle(recipe.arch, ds, seed=config.seed, **recipe.options)
    data = data_for(bundle, ds, val_fraction=recipe.val_fraction, seed=config.seed)
    speed = config.max_steps_per_sec
    if fast:
        config.max_steps_per_sec = 0.0
    config.snapshot_hz = 0.0        # headless: captures are taken here, at the chosen moments
    trainer = Trainer(bundle, data, config)
    request = CaptureRequest(filter_layers=(recipe.filter_layer,))
    losses: list[tuple[int, float, float]] = []
    captures = [(0.0, 0, float("nan"), trainer.probe_now(request))]
    pending = [t for t in times if t > 0]
    start = None
    spent_capturing = 0.0

    def clock(step: int) -> float:
        if fast:
            return step / speed if speed > 0 else float(step)
        return time.perf_counter() - start - spent_capturing

    def on_step(step, loss, acc):
        nonlocal spent_capturing
        t = clock(step)
        losses.append((step, t, loss))
        if pending and t >= pending[0]:
            t0 = time.perf_counter()
            recent = float(np.mean([row[2] for row in losses[-50:]]))
            captures.append((t, step, recent, trainer.probe_now(request)))
            log(f"t={t:6.1f} s  step {step:5d}  loss (last 50 steps) {recent:.3f}")
            pending.pop(0)
            spent_capturing += time.perf_counter() - t0
            if not pending:
                trainer.control.stop()

    trainer.on_step = on_step
    start = time.perf_counter()
    val_acc = None
    try:
        for event in trainer.run():
            if isinstance(event, EpochEnd):
                val_acc = event.val_accuracy
                log(f"epoch {event.epoch + 1}: validation accuracy {event.val_accuracy:.2%}")
            elif isinstance(event, Diverged):
                raise SystemExit(event.message)
        final_loss, final_acc = trainer.evaluate()
    finally:
        trainer.close()
    return captures, losses, {"val_loss_end": final_loss, "val_accuracy_end": final_acc,
                              "last_epoch_val_accuracy": val_acc, "wall_s": time.perf_counter() - start}


# ------------------------------------------------------------------ pictures

def render(app, recipe, captures, out: Path, size) -> list[tuple[float, Path, Path]]:
    from PyQt6.QtCore import QCoreApplication, QEvent

    from visualizer.gui.views.filters import FilterView

    view = FilterView()
    try:
        view.resize(*size)
        view.set_layer(recipe.filter_layer)
        view.set_scale(recipe.filter_scale)
        paths = []
        for t, _step, _loss, snap in captures:
            row = []
            for mode, stem in (("weights", "weights"), ("change since start", "change")):
                view.set_mode(mode)
                view.show_probe(snap)
                path = out / f"{stem}_{round(t):03d}s.png"
                view.export_png(path)
                row.append(path)
            paths.append((t, *row))
    finally:
        # Deleted now, while the application lives: a view left to interpreter shutdown
        # can be destroyed after QApplication and crash the process at exit.
        view.close()
        view.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        app.processEvents()
    return paths


def montage(paths, captures, out: Path, per_row: int = 3) -> Path:
    """All moments in one figure, ``per_row`` to a row: each the weights over their change since the start,
    labelled with the training time, the step and the loss."""
    from PIL import Image, ImageDraw

    tiles = [(Image.open(w).convert("RGB"), Image.open(d).convert("RGB")) for _, w, d in paths]
    tw, th = tiles[0][0].size
    label = 22
    rows = -(-len(tiles) // per_row)
    sheet = Image.new("RGB", (tw * min(per_row, len(tiles)), rows * 2 * (th + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, ((w, d), (t, step, loss, _)) in enumerate(zip(tiles, captures)):
        x, y = (i % per_row) * tw, (i // per_row) * 2 * (th + label)
        text = f"{t:.0f} s, step {step}" + ("" if np.isnan(loss) else f", loss {loss:.2f}")
        draw.text((x + 6, y + 4), "weights: " + text, fill="black")
        sheet.paste(w, (x, y + label))
        draw.text((x + 6, y + th + label + 4), "change since start: " + text, fill="black")
        sheet.paste(d, (x, y + th + 2 * label))
    path = out / "montage.png"
    sheet.save(path)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="watch_lenet5_learn", choices=sorted(RECIPES))
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a TrainConfig field of the recipe (repeatable)")
    p.add_argument("--scale", default=None, help="filter display scale (per layer, per filter)")
    p.add_argument("--fast", action="store_true", help="no slow motion: capture at step = seconds x speed")
    p.add_argument("--times", default=",".join(map(str, DEFAULT_TIMES)), help="seconds of training time")
    p.add_argument("--size", default="420x300", help="view size in pixels, WxH")
    p.add_argument("--out", default=str(REPO / "out" / "watch_it_learn"))
    args = p.parse_args(argv)

    recipe = RECIPES[args.recipe]
    if args.scale:
        from dataclasses import replace
        recipe = replace(recipe, filter_scale=args.scale)
    config = recipe.train_config(**parse_overrides(args.set))
    times = sorted({float(t) for t in args.times.split(",")})
    size = tuple(int(v) for v in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shown = {**recipe.train, **parse_overrides(args.set)}
    print(f"{recipe.title}: {recipe.arch} on {recipe.dataset}, {shown}, scale {recipe.filter_scale}"
          + (" (fast)" if args.fast else " (real time)"), flush=True)

    captures, losses, end = train_and_capture(recipe, config, times, args.fast, lambda s: print(s, flush=True))
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    paths = render(app, recipe, captures, out, size)
    sheet = montage(paths, captures, out)
    with open(out / "loss.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "training_time_s", "loss"])
        w.writerows((s, f"{t:.3f}", f"{loss:.5f}") for s, t, loss in losses)

    w0 = captures[0][3].filters[0].weight
    rows = []
    for (t, step, loss, snap), (_, wp, dp) in zip(captures, paths):
        f = snap.filters[0]
        rows.append({"t_s": round(t, 2), "step": step, "loss_last_50_steps": None if np.isnan(loss) else round(loss, 4),
                     "change_rel": round(float(np.linalg.norm(f.weight - w0) / np.linalg.norm(w0)), 4),
                     "coherence": round(coherence(f.weight), 3), "smoothness": round(smoothness(f.weight), 3),
                     "weights_png": str(wp), "change_png": str(dp)})
    summary = {"recipe": recipe.name, "train": shown, "filter_scale": recipe.filter_scale, "fast": args.fast,
               "first_step_loss": losses[0][2] if losses else None, "moments": rows,
               **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in end.items()}, "montage": str(sheet)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    for r in rows:
        print(f"t={r['t_s']:6.1f} s step {r['step']:5d} loss {r['loss_last_50_steps']} change {r['change_rel']:.3f} "
              f"coherence {r['coherence']:.3f} smoothness {r['smoothness']:.3f}")
    print(f"validation accuracy at the end: {end['val_accuracy_end']:.2%}; montage: {sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
