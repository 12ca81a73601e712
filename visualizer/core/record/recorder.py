"""Record a user's own training loop: the snapshots the app shows, into a run file and a live stream.

    with Recorder(model, "runs/exp1.cnnviz", probe=(images[:1], labels[:1]), optimizer=opt) as rec:
        for step, (x, y) in enumerate(loader):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            rec.step(step, loss=loss)          # after backward, before opt.step()
            opt.step()

What it costs, and why so little:

- On a step that records nothing, ``step()`` reads the clock, keeps a detached reference to
  the loss (no copy, no kernel, no device synchronisation: ``loss.item()`` on every step is
  what makes other loggers slow on a GPU) and the learning rate (a Python number), and returns.
  The forward hooks stay registered but disarmed: each returns at once.
- A snapshot is due at most ``hz`` times a second, and never so often that making them takes
  more than ``budget`` (1%) of the training time: a model whose snapshots cost more gets
  fewer of them (the median of the last few costs paces, as in the app's own trainer; the
  encoding on the background thread counts, and so does what the per-step calls cost).
- On a recording step ``step()`` clones the weights (device copies), and the work happens
  right after the user's ``opt.step()`` (an optimizer step hook): the gradient norms, the
  update of this very step, one eval-mode pass of the probe sample through the model (its
  train/eval flags and BatchNorm statistics untouched), and ONE copy of all of it to the host.
  Without ``optimizer=`` it happens inside ``step()`` and the update ratios are 0.
- Encoding and writing are done by a background thread: a slow disk or viewer drops
  snapshots (counted), it never holds the training up.

Distributed training (torchrun/DDP): only rank 0 records (``ranks`` says otherwise); on the
other ranks every method returns at once, and nothing here ever calls a collective, so it
cannot block or deadlock a job. Gradients read after ``backward()`` are DDP's all-reduced ones.
A DDP or ``torch.compile`` wrapper is looked through to the model itself.

The snapshots are the app's own records (``core/snapshot.py``), made by the app's own
inspector (``core/inspector.py``): a run file opens in the app like its own training.
"""
from __future__ import annotations

import collections
import logging
import os
import queue
import socket
import statistics
import sys
import threading
import time
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..inspector import Inspector
from ..introspect import introspect
from ..model_bundle import ModelBundle
from ..probe_reduce import HostCopy
from ..snapshot import CaptureRequest, TrainingSnapshot, frozen_array
from .encoding import encode_record
from .run_writer import RunWriter
from .stream import StreamServer, parse_address

log = logging.getLogger(__name__)
PACER_WINDOW = 5            # recordings whose median cost paces the next ones
MAX_PENDING_LOSSES = 4096   # detached losses kept between two recordings before they are stacked on the device
FILTER_VALUES_MAX = 16_384  # kernels recorded of every conv layer whose kept weights are at most this big
SAFETY = 0.9                # share of the budget the pacer aims at (see _due)
SINK_QUEUE = 8              # snapshots waiting to be encoded; more are dropped (counted), never waited for


def main_process_rank() -> int:
    """This process's rank in a distributed job (0 when not distributed), without any collective call."""
    try:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            return int(dist.get_rank())
    except (RuntimeError, ValueError):
        pass
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        value = os.environ.get(var)
        if value is not None and value.strip().lstrip("-").isdigit():
            return int(value)
    return 0


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


class Recorder:
    """See the module docstring.

    ``probe``: ``(images, labels)`` or ``images``; the first image (as the model takes it,
    normalised) is the one whose feature maps every snapshot shows. ``mean``/``std``: the
    normalisation it carries, to show it as the original picture (else it is shown scaled to
    its own range). ``layers``/``channels``: which layers' maps, how many channels each
    (more is a bigger run file). ``serve``: ``"host:port"`` to stream to the app as well
    (``"127.0.0.1:0"`` picks a free port; the address and token are printed).
    """

    def __init__(self, model: nn.Module, path: str | os.PathLike | None = None, *, probe, hz: float = 10.0,
                 optimizer: torch.optim.Optimizer | None = None, serve: str | None = None, token: str | None = None,
                 layers=("*",), channels: int = 16, class_names=None, mean=None, std=None,
                 budget: float = 0.01, total_steps: int = 0, ranks=(0,), meta: dict | None = None,
                 overwrite: bool = False, announce=None):
        self.active = main_process_rank() in tuple(ranks)
        self.path = os.fspath(path) if path is not None else None
        self.address: str | None = None
        self.token: str | None = None
        if not self.active:
            return
        if not (hz > 0) or not (0 < budget <= 1):
            raise ValueError(f"hz must be > 0 and budget in (0, 1], got hz={hz}, budget={budget}")
        self.model = unwrap(model)
        self.hz = float(hz)
        self.budget = float(budget)
        self.total_steps = int(total_steps)
        self._announce = announce or (lambda text: print(text, file=sys.stderr, flush=True))
        self._probe_images, self._probe_labels = self._probe_batch(probe)
        shape = tuple(int(d) for d in self._probe_images.shape[1:])
        if len(shape) != 3:
            raise ValueError(f"the probe images must be (N, C, H, W); got {tuple(self._probe_images.shape)}")
        self._mean = tuple(float(v) for v in mean) if mean is not None else None
        self._std = tuple(float(v) for v in std) if std is not None else None
        info = introspect(self.model, shape)
        k = info.num_outputs
        names = tuple(str(c) for c in class_names) if class_names is not None else tuple(str(i) for i in range(k))
        # The probe image is fed as given: the inspector's normalisation is the identity.
        self._bundle = ModelBundle(self.model, shape, names, mean=(0.0,) * shape[0], std=(1.0,) * shape[0],
                                   arch=type(self.model).__name__, source=None)
        self.info = info
        self._inspector = Inspector(self._bundle, info)
        convs = self._inspector.conv_layers
        self.channels = max(1, int(channels))
        self._filter_layers = tuple(n for n, m in convs
                                    if min(self.channels, m.weight.shape[0]) * m.weight[0].numel() <= FILTER_VALUES_MAX)
        self._initial = {n: m.weight.detach()[: self.channels].float().cpu().numpy().copy()
                         for n, m in convs if n in self._filter_layers}
        self._layers = tuple(layers)
        self._optimizer = optimizer
        # pacing and pending state (the training thread's)
        self._last_record = -float("inf")
        self._costs: collections.deque[float] = collections.deque(maxlen=PACER_WINDOW)
        self._cost = 0.0
        self._attempts = 0
        self._step_started: float | None = None
        self._step_gap = 0.0     # seconds between step() calls (moving average)
        self._step_cost = 0.0    # seconds a step() call takes (moving average)
        self._background_costs: collections.deque[float] = collections.deque(maxlen=PACER_WINDOW)
        self._rows: list[tuple] = []           # (step, epoch, loss, lr, accuracy) since the last recording
        self._pending: dict | None = None       # a recording waiting for the optimizer step
        self._last_step_time: float | None = None
        self._rate = 0.0
        self.recorded = 0
        self.dropped = 0
        self._closed = False
        self._hook = optimizer.register_step_post_hook(self._after_optimizer_step) if optimizer is not None else None
        run_meta = {"source": "recorder", "model": type(self.model).__name__, "model_info": info,
                    "class_names": names, "input_shape": shape, "hz": self.hz, "host": socket.gethostname(),
                    "argv": " ".join(sys.argv)[:2000], "torch": torch.__version__, **(meta or {})}
        self._writer = RunWriter(self.path, run_meta, overwrite=overwrite) if self.path is not None else None
        self._server = None
        if serve is not None:
            host, port = parse_address(serve)
            self._server = StreamServer(host, port, token=token, meta=run_meta)
            self.address, self.token = self._server.address, self._server.token
            self._announce(f"cnn-visualizer: serving this run on {self.address} (token {self.token}); "
                           f"attach with File > Attach to live run")
        self._warm_up()
        self._sink: queue.Queue = queue.Queue(maxsize=SINK_QUEUE)
        self._sink_thread = threading.Thread(target=self._drain, name="cnn-visualizer-recorder", daemon=True)
        self._sink_thread.start()

    def _warm_up(self) -> None:
        """One probe pass now, before training: the first pass of a model costs many times a later one
        (allocations, kernels chosen), and paced by that the first minutes would see almost no snapshots."""
        request, index = self._request()
        x = self._probe_images[index]
        self._inspector.probe(request, x.detach().float().cpu().numpy(), None, initial=self._initial, grads=True,
                              also=[lambda flat: self._inspector.stage_gradients(flat, None, {})])

    # ==== the training loop's side ===================================================
    def step(self, step: int, loss=None, *, epoch: int = 0, accuracy=None, batch_size: int | None = None) -> None:
        """Call after ``loss.backward()`` and before ``optimizer.step()``; see the module docstring."""
        if not self.active or self._closed:
            return
        t0 = time.perf_counter()
        self.note(step, loss, epoch=epoch, accuracy=accuracy, batch_size=batch_size)
        self.capture(step, epoch=epoch)
        # What every step's call costs, and how far apart the steps are: that share of the
        # training time is taken out of the snapshots' budget (on a small model it is half of it).
        if self._step_started is not None:
            self._step_gap = _moving(self._step_gap, t0 - self._step_started)
        self._step_started = t0
        self._step_cost = _moving(self._step_cost, time.perf_counter() - t0)

    def note(self, step: int, loss=None, *, epoch: int = 0, accuracy=None, batch_size: int | None = None) -> None:
        """Only the step's scalars (cheap; no synchronisation)."""
        if not self.active or self._closed:
            return
        now = time.monotonic()
        if self._last_step_time is not None and batch_size:
            rate = batch_size / max(now - self._last_step_time, 1e-9)
            self._rate = rate if self._rate == 0 else 0.9 * self._rate + 0.1 * rate
        self._last_step_time = now
        if isinstance(loss, torch.Tensor):
            loss = loss.detach()
        if isinstance(accuracy, torch.Tensor):
            accuracy = accuracy.detach()
        self._rows.append((int(step), int(epoch), loss, self._lr(), accuracy))
        if len(self._rows) > MAX_PENDING_LOSSES:
            self._fold_rows()

    def capture(self, step: int, *, epoch: int = 0) -> None:
        """Make a snapshot now if one is due (gradients must be final: after backward and unscaling)."""
        if not self.active or self._closed or self._pending is not None or not self._due():
            return
        t0 = time.perf_counter()
        # The update of this step is measured against these copies, after the optimizer's step.
        prev = {n: m.weight.detach().clone() for n, m in self._inspector.weighted_layers}
        self._pending = {"step": int(step), "epoch": int(epoch), "prev": prev, "cost": time.perf_counter() - t0}
        if self._optimizer is None:
            self._finish(with_update=False)

    def _after_optimizer_step(self, optimizer, args, kwargs) -> None:
        if self._pending is not None:
            self._finish(with_update=True)

    # ==== making a snapshot ===========================================================
    def _due(self) -> bool:
        hz = self.hz
        request = self._server.latest_request() if self._server is not None else None
        if request and request.get("rate_hz") is not None:
            hz = max(hz, float(request["rate_hz"]))
        per_step = self._step_cost / self._step_gap if self._step_gap > 0 else 0.0
        # The snapshots get what the per-step calls leave of the budget (at least a quarter of it:
        # a model so small that every call costs more still gets a snapshot now and then), less a
        # tenth kept for what no clock here sees (the training thread waiting for the interpreter
        # lock while the background thread encodes).
        budget = max(SAFETY * self.budget - per_step, self.budget / 4)
        interval = max(1.0 / hz, self._cost / budget)
        return time.monotonic() - self._last_record >= interval

    def _request(self) -> tuple[CaptureRequest, int]:
        viewer = self._server.latest_request() if self._server is not None else None
        layers, max_channels, filters, index = self._layers, self.channels, self._filter_layers, 0
        overview = 0
        if viewer:
            if viewer.get("layers"):
                layers = tuple(viewer["layers"])
                overview = self.channels      # the run file still gets every layer
            max_channels = int(viewer.get("max_channels", max_channels))
            filters = tuple(dict.fromkeys((*filters, *viewer.get("filter_layers", ()))))
            index = int(viewer.get("probe_index", 0)) % len(self._probe_images)
        return CaptureRequest(layers=layers, filter_layers=filters, max_channels=max_channels,
                              overview_channels=overview), index

    def _finish(self, *, with_update: bool) -> None:
        pending, self._pending = self._pending, None
        t0 = time.perf_counter()
        try:
            snap = self._snapshot(pending, with_update)
        except Exception as exc:  # noqa: BLE001 - a failed look must never stop the user's training
            log.warning("cnn-visualizer: could not record step %s: %s", pending["step"], exc)
            return
        finally:
            cost = pending["cost"] + time.perf_counter() - t0
            # The first recording is not counted (a model's first pass allocates and picks its
            # kernels: many times a later one); then the median of the last few (one slow one, the
            # machine busy, does not stall recording), not the cheapest: paced by the cheapest,
            # recording took over twice its budget (bench/recorder_overhead).
            self._attempts += 1
            if self._attempts > 1:
                self._costs.append(cost)
                behind = list(self._background_costs)   # the encoding of the earlier ones
                self._cost = statistics.median_low(self._costs) + (statistics.median_low(behind) if behind else 0.0)
            self._last_record = time.monotonic()
        self.recorded += 1
        try:
            self._sink.put_nowait(snap)
        except queue.Full:
            self.dropped += 1

    def _snapshot(self, pending: dict, with_update: bool) -> tuple[TrainingSnapshot, list[tuple]]:
        request, index = self._request()
        x = self._probe_images[index]
        label = self._probe_labels[index] if self._probe_labels is not None else None
        prev = pending["prev"] if with_update else None
        # Gradient norms, weights, this step's update and the steps' losses ride along with the
        # probe pass: one host copy.
        probe, (gradients, rows) = self._inspector.probe(
            request, x.detach().float().cpu().numpy(), label, initial=self._initial, grads=True,
            also=[lambda flat: self._inspector.stage_gradients(flat, prev, {}, reuse_prev=True), self._stage_rows])
        probe = probe.with_input_image(self._display_image(x))
        step, epoch = pending["step"], pending["epoch"]
        last = rows[-1] if rows else (step, epoch, float("nan"), self._lr_float(), float("nan"))
        history = frozen_array(np.array([(r[0], r[2], r[4]) for r in rows], np.float32).reshape(-1, 3))
        snap = TrainingSnapshot(step=step, epoch=epoch, batch=0, batches_per_epoch=0, total_steps=self.total_steps,
                                loss=float(last[2]), accuracy=float(last[4]), lr=float(last[3]),
                                samples_per_sec=float(self._rate), history=history, gradients=gradients, probe=probe)
        return snap, rows

    # ---- the steps' scalars ------------------------------------------------------
    def _lr(self):
        if self._optimizer is None or not self._optimizer.param_groups:
            return float("nan")
        lr = self._optimizer.param_groups[0].get("lr", float("nan"))
        return lr.detach() if isinstance(lr, torch.Tensor) else float(lr)

    def _lr_float(self) -> float:
        lr = self._lr()
        return float(lr) if not isinstance(lr, torch.Tensor) else float("nan")

    def _fold_rows(self) -> None:
        """Too many steps without a recording (a very low rate): stack their losses on the device."""
        losses = [r[2] for r in self._rows if isinstance(r[2], torch.Tensor)]
        if losses:
            stacked = torch.stack([t.float().reshape(()) for t in losses])
            it = iter(stacked.unbind())
            self._rows = [(r[0], r[1], next(it) if isinstance(r[2], torch.Tensor) else r[2], r[3], r[4])
                          for r in self._rows]

    def _stage_rows(self, flat: HostCopy):
        """Put the pending rows' tensor values (losses, accuracies, tensor learning rates) into ``flat``;
        ``finish()`` gives the rows as plain numbers and starts a new batch of rows."""
        rows, self._rows = self._rows, []
        values = [v for r in rows for v in (r[2], r[3], r[4]) if isinstance(v, torch.Tensor)]
        index = flat.add(torch.stack([v.float().reshape(()) for v in values])) if values else None

        def finish() -> list[tuple]:
            it = iter(flat.take(index).tolist()) if index is not None else iter(())
            out = []
            for step, epoch, *figures in rows:
                loss, lr, acc = (next(it) if isinstance(v, torch.Tensor) else (float("nan") if v is None else float(v))
                                 for v in figures)
                out.append((step, epoch, loss, lr, acc))
            return out
        return finish

    def _flush_rows(self) -> None:
        if self._rows and self._writer is not None:
            flat = HostCopy(torch.device("cpu"))
            finish = self._stage_rows(flat)
            flat.copy_to_host()
            self._writer.append_steps(finish())

    def _display_image(self, x: torch.Tensor) -> np.ndarray:
        a = x.detach().float().cpu().numpy()
        if self._mean is not None and self._std is not None:
            c = a.shape[0]
            mean = np.resize(np.asarray(self._mean, np.float32), c).reshape(-1, 1, 1)
            std = np.resize(np.asarray(self._std, np.float32), c).reshape(-1, 1, 1)
            a = a * std + mean
        else:
            lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
            a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        return frozen_array(np.clip(np.nan_to_num(a), 0.0, 1.0))

    @staticmethod
    def _probe_batch(probe) -> tuple[torch.Tensor, list | None]:
        images, labels = (probe if isinstance(probe, (tuple, list)) and len(probe) == 2 else (probe, None))
        if not isinstance(images, torch.Tensor):
            images = torch.as_tensor(np.asarray(images))
        if images.dim() == 3:
            images = images[None]
        images = images.detach()
        if labels is not None:
            labels = [int(v) for v in (labels.tolist() if isinstance(labels, torch.Tensor) else labels)]
        if len(images) == 0:
            raise ValueError("the probe holds no image")
        return images, labels

    # ==== the background thread ======================================================
    def _drain(self) -> None:
        while True:
            item = self._sink.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            snap, rows = item
            started = time.thread_time()
            try:
                data = encode_record(snap)
                if self._writer is not None:
                    self._writer.append_steps(rows)
                    self._writer.append_snapshot(snap.step, snap.epoch, data)
                if self._server is not None:
                    self._server.publish(data)
            except Exception as exc:  # noqa: BLE001 - recording trouble is reported, never raised into training
                log.warning("cnn-visualizer: could not store the snapshot of step %s: %s", snap.step, exc)
            # Counted in the budget too: the encoding holds the interpreter lock much of the time,
            # so it slows the training thread (bench/recorder_overhead measured it: half the cost).
            self._background_costs.append(time.thread_time() - started)

    # ==== lifetime ===================================================================
    def event(self, kind: str, step: int, text: str = "") -> None:
        """A note in the run file ("diverged", "note", ...)."""
        if self.active and self._writer is not None and not self._closed:
            self._writer.append_event(kind, int(step), text)

    def epoch_end(self, epoch: int, step: int, **figures) -> None:
        """Epoch-end figures (train_loss, train_accuracy, val_loss, val_accuracy), any of them."""
        if self.active and self._writer is not None and not self._closed:
            self._writer.append_epoch(int(epoch), int(step), **figures)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every step and snapshot so far is committed to the run file (True if it was)."""
        if not self.active or self._closed:
            return True
        done = threading.Event()
        self._sink.put(done)          # after the snapshots already queued
        if not done.wait(timeout):
            return False
        self._flush_rows()
        return self._writer.flush(timeout) if self._writer is not None else True

    def close(self) -> None:
        """Write what is pending and close the run file and the stream (also on an exception). Safe twice."""
        if not self.active or self._closed:
            return
        self._closed = True
        if self._hook is not None:
            self._hook.remove()
        self._sink.put(None)
        self._sink_thread.join(30)
        try:
            self._flush_rows()
        finally:
            self._inspector.close()
            if self._writer is not None:
                self._writer.close()
            if self._server is not None:
                self._server.close()

    @property
    def stats(self) -> dict[str, Any]:
        """Snapshots recorded and dropped, and the current cost of one (seconds)."""
        return {"recorded": getattr(self, "recorded", 0), "dropped": getattr(self, "dropped", 0),
                "snapshot_cost_s": getattr(self, "_cost", 0.0)}

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None:
            self.event("failed", self._rows[-1][0] if getattr(self, "_rows", None) else 0,
                       f"{exc_type.__name__}: {exc}")
        self.close()
        return False


def _moving(average: float, value: float) -> float:
    """A moving average that starts at the first value."""
    return 0.95 * average + 0.05 * value if average else value
