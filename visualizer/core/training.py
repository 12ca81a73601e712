"""The training loop as a plain generator of snapshots (no Qt).

The app's worker (a child process; a thread with ``--thread-worker``) iterates
:meth:`Trainer.run`; the ``train`` command, a script or a test iterate it just the
same. The worker steers it only through :class:`TrainingControl`, whose methods
are safe to call from any thread.

Why the probe sample is captured by a separate eval-mode pass instead of from
the training batch: the views then show one fixed image consistently across
steps, unaffected by dropout or augmentation, and the pass leaves BatchNorm
statistics alone (DESIGN.md "visualisation-only forward passes"). It costs one
single-sample forward per snapshot, and snapshots come at most ``snapshot_hz``
times a second, only when the GUI has consumed the previous one.
"""
from __future__ import annotations

import collections
import contextlib
import math
import statistics
import threading
import time
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TrainConfig
from .image_fit import fit_probe_image
from .inspector import Inspector
from .model_bundle import ModelBundle
from .outputs import class_scores
from .snapshot import (
    CaptureRequest,
    Diverged,
    EpochEnd,
    Finished,
    Paused,
    ProbeSnapshot,
    TrainingEvent,
    TrainingSnapshot,
    frozen_array,
)

PACER_WINDOW = 5      # snapshots whose median cost paces the next ones (Trainer._record_cost)
HISTORY_CAP = 20_000  # rows of (step, loss, acc) kept between two consumed snapshots
# A paused trainer sleeps until a step, a resume, a stop, a new capture request or a command wakes
# it; the timeout is only a safety net.
PAUSED_WAIT_S = 1.0


def reinitialise(model: nn.Module, seed: int = 0) -> None:
    """Fresh random weights, as PyTorch initialises each layer, seeded; BatchNorm statistics cleared."""
    with torch.no_grad():
        torch.manual_seed(seed)
        for m in model.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
            elif hasattr(m, "reset_running_stats"):
                m.reset_running_stats()


def probe_input(request: CaptureRequest, data, input_shape) -> tuple[np.ndarray, int | None]:
    """The image a capture request asks for: its own input (fitted to ``input_shape``), else the
    ``probe_index``-th sample of ``data``'s probe split (or of ``probe_split``: a top patch found in the
    training split; PreparedData or None), else a blank one."""
    if request.probe_input is not None:
        return fit_probe_image(request.probe_input, tuple(input_shape), request.probe_via), request.probe_label
    found = None
    if data is not None:
        split = request.probe_split
        n = len(data.split(split)) if split in ("train", "val") else 0
        found = data.sample(request.probe_index % n, split=split) if n else data.probe_sample(request.probe_index)
    return found if found is not None else (np.zeros(input_shape, np.float32), None)


class TrainingControl:
    """Thread-safe steering of a running :class:`Trainer`.

    The thread that serves the GUI's commands calls the methods (in the worker process,
    or the GUI thread itself in thread mode); the trainer reads them between steps. A single condition variable wakes a paused trainer.
    """

    def __init__(self, *, start_paused: bool = False):
        self._cond = threading.Condition()
        self._paused = start_paused
        self._stopping = False
        self._quitting = False     # stopped because the engine ends: nobody will draw a final snapshot
        self._step_credits = 0
        self._lr: float | None = None
        self._speed: float | None = None   # live override of TrainConfig.max_steps_per_sec
        self._request = CaptureRequest()
        self._request_version = 0
        self._consumed = True
        self._woken = False

    # --- called from the GUI thread -------------------------------------------------
    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._step_credits = 0
            self._cond.notify_all()

    def step(self, n: int = 1) -> None:
        """Run ``n`` more batches, then stay paused."""
        with self._cond:
            self._paused = True
            self._step_credits += max(1, int(n))
            self._cond.notify_all()

    def stop(self, *, quitting: bool = False) -> None:
        """End the run at the next step. ``quitting``: the engine ends too (the window is closing),
        so the run does not wait for the window to take a final snapshot it will never draw."""
        with self._cond:
            self._stopping = True
            self._quitting = self._quitting or quitting
            self._cond.notify_all()

    def set_lr(self, lr: float) -> None:
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"learning rate must be a positive number, not {lr}")
        with self._cond:
            self._lr = float(lr)

    def set_speed(self, steps_per_sec: float) -> None:
        """Slow motion while running: at most this many steps a second (0: full speed)."""
        if not (steps_per_sec >= 0 and math.isfinite(steps_per_sec)):
            raise ValueError(f"speed must be 0 (full) or a positive number of steps per second, not {steps_per_sec}")
        with self._cond:
            self._speed = float(steps_per_sec)
            self._cond.notify_all()   # a long nap at the old speed ends now

    def request_capture(self, request: CaptureRequest) -> None:
        """Replace the capture request (one slot: the latest wins)."""
        with self._cond:
            self._request = request
            self._request_version += 1
            self._cond.notify_all()

    def wake(self) -> None:
        """A paused trainer returns from its wait now (a command is waiting for it)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def snapshot_consumed(self) -> None:
        """The GUI has applied the last snapshot: the trainer may make another."""
        with self._cond:
            self._consumed = True
            self._cond.notify_all()

    # --- read by the trainer --------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def request(self) -> CaptureRequest:
        return self._request

    @property
    def request_version(self) -> int:
        return self._request_version

    @property
    def consumed(self) -> bool:
        return self._consumed

    def _take_lr(self) -> float | None:
        with self._cond:
            lr, self._lr = self._lr, None
            return lr

    def _nap(self, seconds: float) -> None:
        """Sleep, but wake at once for stop, pause or a single step."""
        with self._cond:
            if not (self._stopping or self._paused):
                self._cond.wait(seconds)

    def _wait_consumed(self, timeout: float) -> bool:
        """Wait for the window to take the snapshot in flight (True once it has); when quitting, do not wait."""
        with self._cond:
            return self._cond.wait_for(lambda: self._consumed or self._quitting, timeout) and self._consumed

    def _mark_in_flight(self) -> None:
        with self._cond:
            self._consumed = False

    def _wait_to_run(self, timeout: float) -> bool:
        """Block while paused; True when a batch may run now (unpaused or a step credit)."""
        with self._cond:
            if self._stopping:
                return False
            if not self._paused:
                return True
            if self._step_credits == 0 and not self._woken:
                self._cond.wait(timeout)
            self._woken = False
            if self._stopping:
                return False
            if not self._paused:
                return True
            if self._step_credits > 0:
                self._step_credits -= 1
                return True
            return False


class Trainer:
    """Trains ``bundle.model`` on ``data`` and yields :data:`TrainingEvent` objects.

    Lives entirely in one thread (the worker's training thread): the model, the optimizer and
    the probe hooks are never touched from elsewhere.
    """

    def __init__(self, bundle: ModelBundle, data, config: TrainConfig | None = None,
                 control: TrainingControl | None = None,
                 on_step: Callable[[int, float, float], None] | None = None,
                 on_progress: Callable[[], None] | None = None):
        """``on_step(step, loss, accuracy)`` after every optimizer step; ``on_progress()`` also after every
        validation batch (a long evaluation is progress too: the engine's heartbeat counts it)."""
        self.config = config or TrainConfig()
        self.config.validate()
        self.bundle = bundle
        self.data = data
        self.control = control or TrainingControl()
        self.on_step = on_step
        self.on_progress = on_progress
        self.device = torch.device("cpu")
        self.notices: list[str] = []
        if self.config.device != "cpu":
            if self.config.device.startswith("cuda") and torch.cuda.is_available():
                self.device = torch.device(self.config.device)
            else:
                self.notices.append(f"device {self.config.device!r} is not available here; training on the CPU")
        self.model: nn.Module = bundle.model.to(self.device)
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules())
        if has_bn and self.config.batch_size < 2:
            raise ValueError("batch size 1 cannot train BatchNorm layers (they need at least 2 values per "
                             "channel in a batch); choose a batch size of 2 or more, or turn BatchNorm off")
        # A last batch of one sample would make BatchNorm fail mid-epoch: drop it instead.
        self._drop_last = has_bn and len(data.train) % self.config.batch_size == 1
        if self._drop_last:
            self.notices.append("the last training sample of each epoch is skipped: a batch of one "
                                "cannot train BatchNorm")
        torch.manual_seed(self.config.seed)
        self.step = 0          # optimizer steps done
        self.epoch = 0         # current epoch (0-based)
        self.batch = 0         # next batch index within the epoch
        self._build_optimizer()
        # Last: the inspector registers hooks, which must not outlive a constructor that failed.
        self.inspector = Inspector(bundle)
        self._initial_filters = self._filter_weights()
        self._history: list[tuple[float, float, float]] = []
        self._last_snapshot_time = 0.0
        self._instrument_cost = 0.0   # seconds a snapshot (and its gradient statistics) takes: see _record_cost
        self._recent_costs: collections.deque[float] = collections.deque(maxlen=PACER_WINDOW)
        self._snapshots_made = 0
        # Seconds each snapshot costs elsewhere in this process (a run writer's encoding, on its own
        # thread but on these cores): counted against the same budget, as the recorder counts its own.
        self.background_cost: Callable[[], float] | None = None
        self._measure_cost = 0.0      # seconds of gradient statistics at the current step
        self._seen_request_version = -1
        self._last_snapshot_step = -1
        self._grad_stats: tuple = ()  # of the last measured step; repeated while paused
        self._rate = 0.0
        self._last_loss = float("nan")
        self._last_acc = float("nan")
        self._epoch_loss = 0.0
        self._epoch_correct = 0
        self._epoch_count = 0
        # Looking at whole training batches (live health, top patches; engine/live.py): called by the
        # probe with every layer's batch output on the steps it is armed (those a snapshot is due).
        self.batch_observer: Callable[[str, str, str | None, torch.Tensor], None] | None = None
        self.batch_positions: list[int] = []   # positions in the train split of the batch being stepped

    # --- set-up ---------------------------------------------------------------------
    def _build_optimizer(self) -> None:
        c = self.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters (all are frozen): nothing to train")
        if c.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=c.lr, momentum=c.momentum,
                                             nesterov=c.nesterov, weight_decay=c.weight_decay)
        elif c.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        if c.schedule == "step":
            self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=c.step_size, gamma=c.gamma)
        elif c.schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=c.epochs)
        else:
            self.scheduler = None

    def _filter_weights(self) -> dict[str, np.ndarray]:
        return {name: m.weight.detach().cpu().numpy().copy() for name, m in self.inspector.conv_layers}

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def batches_per_epoch(self) -> int:
        n = len(self.data.train) - (1 if self._drop_last else 0)
        return max(1, math.ceil(n / self.config.batch_size))

    @property
    def total_steps(self) -> int:
        return self.batches_per_epoch * self.config.epochs

    def reset_weights(self) -> None:
        """Fresh random weights (seeded by ``config.seed``), a fresh optimizer, step 0.

        What a lecturer wants before "watch it learn": every layer re-initialised the way
        PyTorch initialises it, BatchNorm statistics cleared.
        """
        reinitialise(self.model, self.config.seed)
        self._build_optimizer()
        self._initial_filters = self._filter_weights()
        self._history = []
        self._grad_stats = ()
        self.step = self.epoch = self.batch = 0
        self._epoch_loss, self._epoch_correct, self._epoch_count = 0.0, 0, 0

    # --- batches --------------------------------------------------------------------
    def _epoch_order(self, epoch: int) -> torch.Tensor:
        # The order of an epoch depends only on (seed, epoch), so a resumed run
        # replays exactly the batches the uninterrupted run would have seen.
        g = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        return torch.randperm(len(self.data.train), generator=g)

    def _batch(self, order: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = order[b * self.config.batch_size:(b + 1) * self.config.batch_size].tolist()
        self.batch_positions = idx
        ds = self.data.train
        # __getitems__ (when the dataset has it) fetches and augments the batch in one vectorised call
        items = ds.__getitems__(idx) if hasattr(ds, "__getitems__") else [ds[i] for i in idx]
        x = torch.stack([it[0] for it in items]).to(self.device)
        y = torch.as_tensor([int(it[1]) for it in items], dtype=torch.long, device=self.device)
        return x, y

    # --- the loop -------------------------------------------------------------------
    def run(self) -> Iterator[TrainingEvent]:
        c = self.config
        self.model.train()
        while self.epoch < c.epochs:
            order = self._epoch_order(self.epoch)
            while self.batch < self.batches_per_epoch:
                if not self.control._wait_to_run(PAUSED_WAIT_S):
                    if self.control.stopping:
                        yield from self._final_snapshot()
                        yield Finished(self.step, self.epoch, "stopped")
                        return
                    # Paused: answer a changed capture request (new layer, input) at once.
                    yield self._make_snapshot() if self._snapshot_due() else Paused(self.step)
                    continue
                lr = self.control._take_lr()
                if lr is not None:
                    for g in self.optimizer.param_groups:
                        g["lr"] = lr
                x, y = self._batch(order, self.batch)
                due = self._snapshot_due()
                t0 = time.perf_counter()
                diverged = self._train_step(x, y, measure=due)
                if diverged is not None:
                    yield diverged
                    return
                rate = x.shape[0] / max(time.perf_counter() - t0, 1e-9)
                self._rate = rate if self._rate == 0 else 0.9 * self._rate + 0.1 * rate
                self.batch += 1
                if self.on_step is not None:
                    self.on_step(self.step, self._last_loss, self._last_acc)
                if due:
                    yield self._make_snapshot()
                speed = self.control._speed if self.control._speed is not None else c.max_steps_per_sec
                if speed > 0:
                    self.control._nap(t0 + 1.0 / speed - time.perf_counter())
            yield self._end_epoch()
            self.epoch += 1
            self.batch = 0
            if self.scheduler is not None:
                self.scheduler.step()
        yield from self._final_snapshot()
        yield Finished(self.step, self.epoch, "completed")

    def _final_snapshot(self) -> Iterator[TrainingSnapshot]:
        """The steps since the last snapshot, so curves end where training ended.

        Waits briefly for the GUI to take the previous snapshot (one in flight);
        a GUI that never does only loses the tail of the loss curve.
        """
        if self.config.snapshot_hz <= 0 or not self._history:
            return
        if self.control._wait_consumed(timeout=1.0):
            yield self._make_snapshot()

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, measure: bool) -> Diverged | None:
        """One optimizer step; ``measure``: also record gradient statistics (a snapshot is due)."""
        self.optimizer.zero_grad(set_to_none=True)
        probe = self.inspector.layer_probe if measure else None
        if probe is not None:
            # Armed for this one step only: records d loss / d output of sample 0 per layer
            # (the activation-gradient norms); maps come from the eval-mode probe pass later.
            probe.arm(set(), sample_index=0, want_grads=True, stats=False, batch_observer=self.batch_observer)
        try:
            with probe.functional() if probe is not None else contextlib.nullcontext():
                logits = class_scores(self.model(x), len(self.data.class_names))  # the rule: outputs.py
            loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                return self._diverged(x, f"the loss became {loss.item()}")
            loss.backward()
        finally:
            if probe is not None:
                probe.disarm()
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if grads:
            total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            if not torch.isfinite(total):
                layer = next((n for n, m in self.inspector.weighted_layers
                              if m.weight.grad is not None and not torch.isfinite(m.weight.grad).all()), None)
                return self._diverged(x, "a gradient became non-finite", layer)
            if self.config.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        t_measure = time.perf_counter()
        prev = {n: m.weight.detach().clone() for n, m in self.inspector.weighted_layers} if measure else None
        t_measure = time.perf_counter() - t_measure
        self.optimizer.step()
        self.step += 1
        with torch.no_grad():
            acc = (logits.argmax(1) == y).float().mean().item()
        self._last_loss, self._last_acc = float(loss.item()), acc
        self._epoch_loss += self._last_loss * len(y)
        self._epoch_correct += int(round(acc * len(y)))
        self._epoch_count += len(y)
        self._history.append((float(self.step), self._last_loss, acc))
        if len(self._history) > HISTORY_CAP:
            self._history = self._history[::2]  # decimate rather than grow without bound
        if measure:
            t0 = time.perf_counter()
            self._grad_stats = self.inspector.gradient_stats(prev, None, reuse_prev=True)   # prev: our copies
            self._measure_cost = t_measure + time.perf_counter() - t0
        return None

    def _diverged(self, x: torch.Tensor, what: str, layer: str | None = None) -> Diverged:
        if layer is None:
            try:
                layer = self.inspector.first_nonfinite_layer(x)
            except Exception:  # noqa: BLE001 - diagnosis is best effort; the stop itself must happen
                layer = None
        where = f"; the first non-finite output was in layer {layer}" if layer else ""
        msg = (f"Training stopped at step {self.step + 1} (epoch {self.epoch + 1}): {what}{where}. "
               f"The weights are those of the last good step. Try a lower learning rate "
               f"(now {self.lr:g}), gradient clipping, or BatchNorm.")
        return Diverged(self.step, self.epoch, layer, msg)

    def _end_epoch(self) -> EpochEnd:
        n = max(self._epoch_count, 1)
        train_loss, train_acc = self._epoch_loss / n, self._epoch_correct / n
        self._epoch_loss, self._epoch_correct, self._epoch_count = 0.0, 0, 0
        val_loss, val_acc = self.evaluate()
        return EpochEnd(self.epoch, self.step, train_loss, train_acc, val_loss, val_acc)

    def evaluate(self, batch_size: int = 256) -> tuple[float | None, float | None]:
        """Loss and accuracy on the validation split (eval mode, no grad; mode restored)."""
        val = self.data.val
        if val is None or len(val) == 0:
            return None, None
        was_training = self.model.training
        self.model.eval()
        total, correct, loss_sum = 0, 0, 0.0
        try:
            with torch.no_grad():
                for s in range(0, len(val), batch_size):
                    items = [val[i] for i in range(s, min(s + batch_size, len(val)))]
                    x = torch.stack([it[0] for it in items]).to(self.device)
                    y = torch.as_tensor([int(it[1]) for it in items], dtype=torch.long, device=self.device)
                    logits = class_scores(self.model(x))
                    loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
                    correct += int((logits.argmax(1) == y).sum())
                    total += len(y)
                    if self.on_progress is not None:
                        self.on_progress()
        finally:
            self.model.train(was_training)
        return loss_sum / total, correct / total

    # --- snapshots ------------------------------------------------------------------
    def _snapshot_due(self) -> bool:
        hz = self.config.snapshot_hz
        if hz <= 0 or not self.control.consumed:
            return False  # headless, or the GUI still holds the last one: at most one in flight
        if self.control.request_version != self._seen_request_version:
            return True   # a new layer or input: answer now
        if self.control.paused:
            return self._last_snapshot_step != self.step  # a single step: show it
        # The pacer: at most `hz` a second, and never more often than keeps the time spent
        # instrumenting under the budget (a big model's snapshots cost more, so come less often).
        cost = self._instrument_cost + (self.background_cost() if self.background_cost is not None else 0.0)
        interval = max(1.0 / hz, cost / max(self.config.instrumentation_budget, 1e-6))
        return time.perf_counter() - self._last_snapshot_time >= interval

    def _record_cost(self, seconds: float) -> None:
        """The pacer's cost is the median of the last few snapshots, not the last one.

        A snapshot taken while the machine (or, with a thread worker, the GUI holding the
        GIL) was busy can take a hundred times its real cost; paced by that one, the views
        froze for minutes. Lasting slowness still shows: it is in most recent snapshots.
        Not the cheapest either: paced by the cheapest, snapshots took twice their budget.
        The run's first snapshot is not counted: a model's first pass costs many times a later
        one (allocations, kernels chosen), and paced by it the views waited many seconds.
        """
        self._snapshots_made += 1
        if self._snapshots_made == 1:
            return
        self._recent_costs.append(seconds)
        self._instrument_cost = statistics.median_low(self._recent_costs)

    def _make_snapshot(self) -> TrainingSnapshot:
        t0 = time.perf_counter()
        request = self.control.request
        self._seen_request_version = self.control.request_version
        probe = self.probe_now(request)
        self._last_snapshot_step = self.step
        history = frozen_array(np.asarray(self._history, dtype=np.float32).reshape(-1, 3))
        self._history = []
        self._last_snapshot_time = time.perf_counter()
        self._record_cost(self._measure_cost + self._last_snapshot_time - t0)
        self._measure_cost = 0.0
        self.control._mark_in_flight()
        return TrainingSnapshot(
            step=self.step, epoch=self.epoch, batch=self.batch, batches_per_epoch=self.batches_per_epoch,
            total_steps=self.total_steps, loss=self._last_loss, accuracy=self._last_acc, lr=self.lr,
            samples_per_sec=self._rate, history=history, gradients=self._grad_stats, probe=probe)

    def probe_now(self, request: CaptureRequest, image01: np.ndarray | None = None,
                  label: int | None = None) -> ProbeSnapshot:
        """One eval-mode, no-grad pass on the probe sample (BatchNorm statistics untouched)."""
        if image01 is None:
            image01, label = self.probe_sample(request)
        initial = {n: w for n, w in self._initial_filters.items() if n in request.filter_layers}
        return self.inspector.probe(request, image01, label, initial=initial, grads=True)

    def probe_sample(self, request: CaptureRequest) -> tuple[np.ndarray, int | None]:
        return probe_input(request, self.data, self.bundle.input_shape)

    # --- resume ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything a bit-identical resume needs, in types ``weights_only`` loading accepts."""
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "step": self.step, "epoch": self.epoch, "batch": self.batch,
            "torch_rng": torch.get_rng_state(),
            "augment_rng": self._augment_generator().get_state() if self._augment_generator() else None,
            "config": self.config.to_dict(),
            "epoch_sums": [self._epoch_loss, self._epoch_correct, self._epoch_count],
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch, self.batch = int(state["step"]), int(state["epoch"]), int(state["batch"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("augment_rng") is not None and self._augment_generator() is not None:
            self._augment_generator().set_state(state["augment_rng"])
        sums = state.get("epoch_sums", [0.0, 0, 0])
        self._epoch_loss, self._epoch_correct, self._epoch_count = float(sums[0]), int(sums[1]), int(sums[2])

    def _augment_generator(self) -> torch.Generator | None:
        """The training split's own augmentation RNG, if it has one (part of the resume state)."""
        get = getattr(self.data.train, "generator", None)
        return get() if callable(get) and getattr(self.data.train, "augment", None) is not None else None

    def close(self) -> None:
        self.inspector.close()
