"""Runs an :class:`Engine` in one thread and takes its orders from any other (no Qt).

The viewer talks to it through

* commands (load, dataset, build, train, reset, save) run in order, in the engine's thread;
* a one-slot mailbox of capture requests (the latest wins; one probe answer in flight);
* a :class:`TrainingControl` for pause/resume/step/stop/learning rate/speed, thread-safe
  and read by the trainer between steps,

and hears back through ``emit(name, payload)`` with frozen snapshots and plain data only.
At most one training snapshot and one probe snapshot are in flight: the viewer calls
``snapshot_consumed`` / ``probe_consumed`` after applying each, so however slow it is,
memory and queues stay bounded. The engine's thread sleeps on a condition until there is
work; nothing polls.

Every exception in the engine's thread is caught and reported through ``failed``, a
``sys.exit()`` in a user's model too (naming the model's file): it must not end the engine.
What the engine's thread is doing is kept in an ``Activity`` for the process's heartbeat.
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Any, Callable

from ..config import TrainConfig
from ..errors import ModelError
from ..snapshot import CaptureRequest, Finished
from ..training import TrainingControl
from .activity import COMMAND_PATIENCE_S, SLOW_COMMAND_PATIENCE_S, TRAINING_PATIENCE_S, Activity
from .engine import Engine
from .messages import AnalysisProgress, AnalysisResult, describe_error
from .side_probe import SideProbe

# The methods of EngineService a viewer may call (in process mode they travel as messages).
COMMANDS = ("load_sample", "load_file", "load_bundle", "load_user_model", "build", "set_dataset",
            "start_training", "pause", "resume", "step", "stop", "set_lr", "set_speed", "reset_weights",
            "save", "save_safetensors", "request_capture", "snapshot_consumed", "probe_consumed",
            "set_side_probe_always", "resume_run", "analyse", "cancel_analysis", "watch_top_patches",
            "set_live_health", "set_input_format")


class Mailbox:
    """One slot for capture requests: the latest wins, and one answer is in flight at a time."""

    def __init__(self, wake: Callable[[], None]):
        self._wake = wake
        self._lock = threading.Lock()
        self._request: CaptureRequest | None = None
        self._in_flight = False
        self.last = CaptureRequest()     # shown again on a new model or new data
        self._asked = False              # no request yet: nothing to show again (an empty one shows nothing)

    def put(self, request: CaptureRequest) -> None:
        with self._lock:
            self._request = self.last = request
            self._asked = True
        self._wake()

    def ready(self) -> bool:
        with self._lock:
            return self._request is not None and not self._in_flight

    def take(self) -> CaptureRequest | None:
        with self._lock:
            if self._request is None or self._in_flight:
                return None
            request, self._request = self._request, None
            self._in_flight = True
            return request

    def done(self) -> None:
        """The viewer has the last answer (or it failed): another may be made."""
        with self._lock:
            self._in_flight = False
        self._wake()

    def requeue(self) -> None:
        """After the model or data changed, show the last request again on the new one."""
        with self._lock:
            if self._request is None and self._asked:
                self._request = self.last
        self._wake()

    def answered(self, request_id: int) -> None:
        """A training snapshot answered requests up to ``request_id``: a separate probe is not needed."""
        with self._lock:
            if self._request is not None and self._request.request_id <= request_id:
                self._request = None


@dataclass(frozen=True)
class _Command:
    run: Callable[[], None]
    replaces: bool = False          # replaces the model or the data: a running training ends first
    between_steps: bool = False     # may run between two training steps (save, reset)
    label: str = ""                 # what the heartbeat says while it runs ("" : about the open model)
    file: str | None = None         # the file whose code or data it reads (None: the open model's)
    patience_s: float | None = None


class EngineService:
    """See the module docstring. ``run()`` is the engine's thread; every other method is thread-safe."""

    def __init__(self, emit: Callable[[str, Any], None], *, sample_limit: int | None = None,
                 activity: Activity | None = None, keep_runs: bool = False):
        """``keep_runs``: autosave and record every run (the app); off for scripts and tests of the engine."""
        self._emit_out = emit
        self.activity = activity or Activity()
        self.engine = Engine(self._emit, sample_limit=sample_limit, keep_runs=keep_runs,
                             on_progress=self.activity.tick)
        self._cond = threading.Condition()
        self._commands: collections.deque[_Command] = collections.deque()
        self.mailbox = Mailbox(self._wake)
        self._control: TrainingControl | None = None
        self._cancels: dict[int, threading.Event] = {}
        self._quit = False
        self._engine_thread: int | None = None

    # ==== what the engine says =======================================================
    def _emit(self, name: str, payload) -> None:
        if threading.get_ident() == self._engine_thread:
            # Whatever the engine's thread says is progress (a long analysis reports its own); not what the
            # side probe's thread says: it answers views while the engine's thread may be stuck in a step.
            self.activity.tick()
        if name == "requeue_probe":
            self.mailbox.requeue()
            return
        if name == "training_snapshot" and payload.probe is not None:
            self.mailbox.answered(payload.probe.request_id)
        self._emit_out(name, payload)

    # ==== commands (any thread) ======================================================
    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _send(self, run: Callable[[], None], *, replaces: bool = False, between_steps: bool = False,
              label: str = "", file: str | None = None, patience_s: float | None = None) -> None:
        if replaces and self._control is not None:
            self._control.stop()
        with self._cond:
            self._commands.append(_Command(run, replaces, between_steps, label, file, patience_s))
            self._cond.notify_all()
        if self._control is not None:
            self._control.wake()   # a paused run handles it between two waits, at once

    def load_sample(self) -> None:
        self._send(self.engine.load_sample, replaces=True, label="opening the sample model")

    def load_file(self, path: str, **kwargs) -> None:
        """kwargs go to checkpoint.load_model (arch, arch_options, model_spec, trust)."""
        spec = kwargs.get("model_spec")
        self._send(lambda: self.engine.load_file(str(path), **kwargs), replaces=True, label=f"opening {path}",
                   file=str(spec).rpartition(":")[0] if spec else str(path), patience_s=SLOW_COMMAND_PATIENCE_S)

    def load_bundle(self, bundle) -> None:
        """Hand over a ModelBundle built elsewhere (scripts, tests); the caller must not touch it again."""
        self._send(lambda: self.engine.load_bundle(bundle), replaces=True, label="opening a model")

    def load_user_model(self, spec: str) -> None:
        # Its import and constructor are the user's code: a loop there is what the heartbeat catches.
        self._send(lambda: self.engine.load_user_model(str(spec)), replaces=True, label=f"opening {spec}",
                   file=str(spec).rpartition(":")[0] or str(spec))

    def build(self, arch: str, options: dict | None = None, *, seed: int = 0) -> None:
        options = dict(options or {})
        self._send(lambda: self.engine.build(arch, options, seed=seed), replaces=True, label=f"building {arch}")

    def set_dataset(self, spec: str, *, limit: int | None = None, augment=None, seed: int = 0) -> None:
        self._send(lambda: self.engine.set_dataset(spec, limit=limit, augment=augment, seed=seed), replaces=True,
                   label=f"reading the data set {spec}", file=str(spec), patience_s=SLOW_COMMAND_PATIENCE_S)

    def start_training(self, config: TrainConfig, *, augment=None, paused: bool = False, steps: int = 0) -> None:
        """``augment`` (config.Augment) re-prepares the training data first if it changed."""
        if self._control is not None:
            self._control.stop()  # never leave a run without a way to stop it
        control = TrainingControl(start_paused=paused)
        if steps:
            control.step(steps)
        control.request_capture(self.mailbox.last)
        self._control = control
        self._send(lambda: self._train(config, control, augment), label="training")

    def resume_run(self, checkpoint: str, *, snapshot_hz: float = 10.0, device: str = "cpu",
                   max_steps_per_sec: float = 0.0, model_spec: str | None = None) -> None:
        """Continue the run an autosave (or any checkpoint with a training state) holds, exactly as it
        was set up: its model, data split, optimizer, schedule and position (``Engine.load_resumable``).
        Only how it is watched (snapshot rate, device, slow motion) comes from the viewer."""
        if self._control is not None:
            self._control.stop()
        control = TrainingControl()
        control.request_capture(self.mailbox.last)
        self._control = control

        def resume() -> None:
            try:
                config, state = self.engine.load_resumable(str(checkpoint), model_spec=model_spec)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure to resume is reported
                if self._control is control:
                    self._control = None
                # The viewer shows a run going from the moment it asked: it ends here, saying why.
                self._emit("failed", describe_error(exc, None, model_spec.rpartition(":")[0] if model_spec else None))
                self._emit("finished", Finished(0, 0, "failed"))
                return
            config.snapshot_hz, config.device, config.max_steps_per_sec = snapshot_hz, device, max_steps_per_sec
            self._train(config, control, None, resume_state=state)

        self._send(resume, label=f"resuming {checkpoint}", file=model_spec.rpartition(":")[0] if model_spec
                   else str(checkpoint), patience_s=SLOW_COMMAND_PATIENCE_S)

    def pause(self) -> None:
        if self._control is not None:
            self._control.pause()

    def resume(self) -> None:
        if self._control is not None:
            self._control.resume()

    def step(self, n: int = 1) -> None:
        if self._control is not None:
            self._control.step(n)

    def stop(self) -> None:
        if self._control is not None:
            self._control.stop()

    def set_lr(self, lr: float) -> None:
        if self._control is not None:
            self._control.set_lr(lr)

    def set_speed(self, steps_per_sec: float) -> None:
        if self._control is not None:
            self._control.set_speed(steps_per_sec)

    def set_input_format(self, mean, std, class_names=()) -> None:
        """The open model's normalisation and class names (after a run, which keeps its own)."""
        self._send(lambda: self.engine.set_input_format(tuple(mean), tuple(std), tuple(class_names)))

    def reset_weights(self, seed: int | None = None) -> None:
        """Fresh seeded weights; ``seed`` None: the last run's seed (0 before any run)."""
        self._send(lambda: self.engine.reset_weights(seed), between_steps=True)

    def save(self, path: str) -> None:
        self._send(lambda: self.engine.save(str(path)), between_steps=True)

    def save_safetensors(self, path: str) -> None:
        self._send(lambda: self.engine.save_safetensors(str(path)), between_steps=True)

    def request_capture(self, request: CaptureRequest) -> None:
        """What to capture: the trainer uses it for its snapshots; when idle it is probed once."""
        if self._control is not None:
            self._control.request_capture(request)
        self.mailbox.put(request)

    def snapshot_consumed(self) -> None:
        if self._control is not None:
            self._control.snapshot_consumed()

    def probe_consumed(self) -> None:
        self.mailbox.done()

    def analyse(self, kind: str, params: dict | None = None, request_id: int = 0) -> None:
        """Look at the open model (``analysis.py``); answered by an ``analysis`` event, also mid-run."""
        cancel = threading.Event()
        self._cancels[request_id] = cancel
        params = dict(params or {})
        self._send(lambda: self._analyse(kind, params, request_id, cancel), between_steps=True,
                   label=f"analysing the model ({kind})", patience_s=SLOW_COMMAND_PATIENCE_S)

    def cancel_analysis(self, request_id: int) -> None:
        cancel = self._cancels.get(request_id)
        if cancel is not None:
            cancel.set()

    def _analyse(self, kind: str, params: dict, request_id: int, cancel: threading.Event) -> None:
        from .analysis import analyse
        try:
            if cancel.is_set():
                raise ModelError("cancelled")
            record = analyse(self.engine, kind, params, self.mailbox.last, cancel=cancel,
                             progress=lambda done, total: self._emit(
                                 "analysis_progress", AnalysisProgress(kind, request_id, int(done), int(total))))
            result = AnalysisResult(kind, request_id, record)
        except Exception as exc:  # noqa: BLE001 - the answer says why; the engine goes on
            result = AnalysisResult(kind, request_id, None, describe_error(exc))
        finally:
            self._cancels.pop(request_id, None)
        self._emit("analysis", result)

    def watch_top_patches(self, layer: str | None) -> None:
        """Accumulate ``layer``'s top patches from the training passes (None: stop); takes effect at the next
        training event, so it is set directly rather than queued behind a step (engine/live_patches.py)."""
        self.engine.live_patches_layer = None if layer is None else str(layer)
        if self._control is not None:
            self._control.wake()   # a paused run applies it now

    def set_live_health(self, on: bool) -> None:
        """Whether the health monitor follows the next training runs (engine/live_health.py)."""
        self.engine.live_health = bool(on)

    def set_side_probe_always(self, on: bool) -> None:
        """Tests: answer views from the side probe for small models too."""
        self.engine.side_probe_always = bool(on)

    def request_quit(self, *, orphaned: bool = False) -> None:
        """End the engine; ``orphaned``: its viewer died, so a run going on counts as interrupted
        (its autosave is offered for resuming at the next start), not as stopped by the user."""
        if orphaned:
            self.engine.interrupted = True
        with self._cond:
            self._quit = True
            self._cond.notify_all()
        control = self._control      # (read once: another thread may replace it meanwhile)
        if control is not None:
            control.stop(quitting=True)   # a final snapshot would wait for a window that is closing

    # ==== the engine's thread ========================================================
    def run(self) -> None:
        """Serve commands and capture requests until ``request_quit``; then close the engine."""
        self._engine_thread = threading.get_ident()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._quit or self._commands or self._probe_due())
                if self._quit:
                    break
                cmd = self._commands.popleft() if self._commands else None
            if cmd is not None:
                self._begin(cmd)
                self._guarded(cmd.run)
            if self._probe_due():
                self.activity.begin("probing the model", self.engine.model_file)
                self._guarded(self._serve_probe)
            self.activity.idle()
        self._guarded(self.engine.close)

    def _begin(self, cmd: _Command) -> None:
        self.activity.begin(cmd.label or "working", cmd.file or self.engine.model_file,
                            cmd.patience_s or COMMAND_PATIENCE_S)

    def _probe_due(self) -> bool:
        e = self.engine
        return e.trainer is None and e.bundle is not None and self.mailbox.ready()

    def _guarded(self, fn) -> None:
        try:
            fn()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - every failure becomes a message
            # SystemExit: a user's model called sys.exit(); uncaught it would end the engine silently.
            trainer = self.engine.trainer
            self._emit("failed", describe_error(exc, trainer.config.batch_size if trainer is not None else None,
                                                self.activity.model_file or self.engine.model_file))

    def _serve_probe(self) -> None:
        request = self.mailbox.take()
        if request is None:
            return
        try:
            snap = self.engine.probe(request)
        except BaseException:
            self.mailbox.done()  # nothing in flight after a failed probe
            raise
        if snap is None:
            self.mailbox.done()
            return
        self._emit("probe_ready", snap)

    def _train(self, config: TrainConfig, control: TrainingControl, augment, resume_state=None) -> None:
        deferred: list[_Command] = []
        self.activity.begin(f"training {self.engine.model_name}", self.engine.model_file, TRAINING_PATIENCE_S)

        def between_events() -> None:
            self.activity.tick()
            deferred.extend(self._drain_during_training(control))
            if self._quit:
                control.stop()

        try:
            self.engine.train(config, control, augment, between_events=between_events,
                              side_probe=self._side_probe, resume_state=resume_state)
        finally:
            if self._control is control:
                self._control = None
        for cmd in deferred:
            self._begin(cmd)
            self._guarded(cmd.run)

    def _side_probe(self, bundle, data, control) -> SideProbe:
        return SideProbe(bundle, data, control, self.mailbox, self._emit)

    def _drain_during_training(self, control: TrainingControl) -> list[_Command]:
        """Run the commands that fit between two steps; keep the rest for after training."""
        deferred = []
        while True:
            with self._cond:
                if not self._commands:
                    return deferred
                cmd = self._commands.popleft()
            if cmd.between_steps:
                self._guarded(cmd.run)
            else:
                # A new model/data/training replaces this run (its command already called stop()).
                control.stop()
                deferred.append(cmd)
