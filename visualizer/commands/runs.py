"""Run files on the command line: what ``info RUN`` prints, and the records ``render RUN --step N`` draws.

A run file (``core/record``) is data: it is read through ``RunReader``, which refuses an
empty, truncated or foreign file with one ``RunFileError`` naming it. Nothing here
imports torch: a run is looked at with numpy alone.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import CliError
from .layer_table import format_layer_table

SHOWN_ROWS = 8   # epochs and events listed by `info`; older ones are counted


def _open(path):
    from ..core.record.run_reader import RunReader
    return RunReader(path)


def run_summary(path) -> str:
    """The model (layer table from the run's own ModelInfo), steps, snapshots, epochs, events and layers."""
    with _open(path) as r:
        meta, info = r.meta, r.model_info
        steps, snapshot_steps = r.steps(), r.snapshot_steps()
        epochs, events = r.epochs(), r.events()
        last = r.load_snapshot(int(snapshot_steps[-1])) if len(snapshot_steps) else None
        finished = r.finished
    source = meta.get("source") or "an unknown writer"
    state = "finished" if finished else "not closed (still being written, or its writer stopped)"
    lines = [f"{path}: a run recorded by {source} from {meta.get('model') or 'a model'}, {state}"]
    if info is not None:
        lines += ["", format_layer_table(info), ""]
    else:
        lines.append("model: the run does not record its layers")
    lines.append(_steps_line(steps))
    lines.append(f"snapshots: {len(snapshot_steps)}" + (
        f" at steps {int(snapshot_steps[0])} to {int(snapshot_steps[-1])}" if len(snapshot_steps) else ""))
    lines += _listed("epochs", [_epoch_text(e) for e in epochs])
    lines += _listed("events", [f"{e.kind} at step {e.step}" + (f": {e.text}" if e.text else "") for e in events])
    lines.append(_layers_line(info, last))
    return "\n".join(lines)


def _steps_line(steps: np.ndarray) -> str:
    if not len(steps):
        return "steps: 0"
    loss = float(steps["loss"][-1])
    tail = f", last loss {loss:.4f}" if math.isfinite(loss) else ""
    return f"steps: {len(steps)} (step {int(steps['step'][0])} to {int(steps['step'][-1])}){tail}"


def _figure(name: str, v: float | None, percent: bool = False) -> str | None:
    if v is None or not math.isfinite(v):
        return None
    return f"{name} {100 * v:.1f}%" if percent else f"{name} {v:.4f}"


def _epoch_text(e) -> str:
    figures = [f for f in (_figure("train loss", e.train_loss), _figure("train accuracy", e.train_accuracy, True),
                           _figure("validation loss", e.val_loss),
                           _figure("validation accuracy", e.val_accuracy, True)) if f]
    return f"epoch {e.epoch + 1} at step {e.step}" + (f": {', '.join(figures)}" if figures else "")


def _listed(title: str, rows: list[str]) -> list[str]:
    if not rows:
        return [f"{title}: 0"]
    earlier = len(rows) - SHOWN_ROWS
    head = f"{title}: {len(rows)}" + (f" (the last {SHOWN_ROWS} shown)" if earlier > 0 else "")
    return [head] + [f"  {r}" for r in rows[-SHOWN_ROWS:]]


def _layers_line(info, last) -> str:
    total = f"{len(info.layers)} in the model" if info is not None else "unknown"
    if last is None:
        return f"layers: {total}"
    at, snap = last
    probe = getattr(snap, "probe", snap)
    if probe is None or not hasattr(probe, "layers"):
        return f"layers: {total}"
    return (f"layers: {total}; the snapshot at step {at} holds the maps of {len(probe.layers)}, "
            f"the filters of {len(probe.filters)} and the statistics of {len(probe.activations)} activations")


def recorded_step(path, step: int | None):
    """(step, ProbeSnapshot, TrainingSnapshot or None, EpochEnds) of the snapshot at or before ``step``
    (default: the last), the training record's curve made of the run's own step table up to it."""
    from dataclasses import replace

    from ..core.snapshot import EpochEnd, ProbeSnapshot, TrainingSnapshot, frozen_array
    with _open(path) as r:
        snapshot_steps = r.snapshot_steps()
        if not len(snapshot_steps):
            raise CliError(f"{path}: holds no snapshot to render (its {len(r.steps())} step(s) have scalars only)")
        want = int(snapshot_steps[-1]) if step is None else int(step)
        found = r.load_snapshot(want)
        if found is None:
            raise CliError(f"{path}: has no snapshot at or before step {want}; the first is at step "
                           f"{int(snapshot_steps[0])}")
        at, record = found
        table, epochs = r.steps(), r.epochs()
    if isinstance(record, TrainingSnapshot):
        probe, training = record.probe, record
    elif isinstance(record, ProbeSnapshot):
        probe, training = record, None
    else:
        raise CliError(f"{path}: the record at step {at} is a {type(record).__name__}, not a snapshot")
    if probe is None:
        raise CliError(f"{path}: the snapshot at step {at} holds training figures but no probe pass to draw")
    rows = table[table["step"] <= at]
    if training is not None and len(rows):
        # The whole curve up to this step, from the step table (a snapshot carries only its own last rows).
        history = np.stack([rows["step"], rows["loss"], rows["accuracy"]], axis=1)
        training = replace(training, history=frozen_array(history, np.float32))
    nan = float("nan")
    ends = tuple(EpochEnd(e.epoch, e.step, nan if e.train_loss is None else e.train_loss,
                          nan if e.train_accuracy is None else e.train_accuracy, e.val_loss, e.val_accuracy)
                 for e in epochs if e.step <= at)
    return at, probe, training, ends
