"""The window's handle on the engine: transport only (a thread or a child process) and Qt signals.

Everything the engine does lives in ``visualizer.core.engine`` (no Qt). This class picks
where it runs, forwards the window's calls to it, and turns its events into queued Qt
signals, so every slot runs in the GUI thread and no widget is touched from elsewhere.

``process=True`` (the app): the engine runs in a child process (``core.engine.process``),
so training never competes with the window's drawing for the GIL, and this process never
imports torch. ``process=False`` (tests, ``--thread-worker``): it runs in a thread of this
process (importing torch here).

Only a process can be ended from outside: in process mode a crashed child is reported
(``crashed``), a stuck or frozen one too (``unresponsive``, from its heartbeat), and
``stop_engine()`` ends it on the user's word. A thread stuck in a user's ``forward`` can
only end with the app (it is a daemon; ``shutdown`` gives up on it after a few seconds).
"""
from __future__ import annotations

import logging
import threading
import traceback

from PyQt6.QtCore import QObject, pyqtSignal

log = logging.getLogger(__name__)
# The engine's events that become a signal of the same name carrying the payload.
_EVENTS = frozenset(("probe_ready", "training_snapshot", "epoch_end", "finished", "diverged", "failed",
                     "model_loaded", "data_ready", "trust_required", "architecture_required", "notice", "saved",
                     "run_started", "unresponsive", "analysis", "analysis_progress", "health_report", "health_alerts",
                     "live_top_patches", "input_format"))
THREAD_JOIN_S = 3.0   # shutdown in thread mode: how long to wait for a step before abandoning the thread


class Worker(QObject):
    """Every method returns at once; results come back as signals."""

    probe_ready = pyqtSignal(object)         # ProbeSnapshot (on-demand probe)
    training_snapshot = pyqtSignal(object)   # TrainingSnapshot
    epoch_end = pyqtSignal(object)           # EpochEnd
    finished = pyqtSignal(object)            # Finished
    diverged = pyqtSignal(object)            # Diverged
    failed = pyqtSignal(str)                 # readable message (a run that failed also ends with Finished)
    model_loaded = pyqtSignal(object)        # messages.LoadedModel
    data_ready = pyqtSignal(object)          # messages.DataInfo
    trust_required = pyqtSignal(object)      # messages.TrustRequest: ask, then retry with trust=<sha256>
    architecture_required = pyqtSignal(object)  # messages.ArchitectureRequest: retry with arch=/model_spec=
    notice = pyqtSignal(str)                 # informational (CUDA fallback, rebuilt model...)
    saved = pyqtSignal(str)                  # path written
    started_training = pyqtSignal()          # a Trainer exists and runs (or waits for a step)
    crashed = pyqtSignal(str)                # the engine itself died (after ``failed``): call restart()
    unresponsive = pyqtSignal(object)        # messages.Unresponsive: alive but stuck or frozen (process mode)
    responsive = pyqtSignal()                # it makes progress again
    run_started = pyqtSignal(object)         # messages.RunStarted: the run file and autosave of a new run
    analysis = pyqtSignal(object)            # messages.AnalysisResult
    analysis_progress = pyqtSignal(object)   # messages.AnalysisProgress
    health_report = pyqtSignal(object)       # health.HealthReport of the run going on (live)
    health_alerts = pyqtSignal(object)       # tuple of health.HealthAlert: flags that have just appeared
    live_top_patches = pyqtSignal(object)    # channels.TopPatches accumulated from the training passes
    input_format = pyqtSignal(object)        # messages.InputFormat: the model's normalisation, class names

    def __init__(self, parent: QObject | None = None, *, sample_limit: int | None = None, process: bool = False,
                 keep_runs: bool = True, stuck_after_s: float | None = None):
        """``keep_runs``: record and autosave every run (the app's behaviour, on by default);
        ``stuck_after_s``: call a process that long without progress unresponsive, whatever it
        is doing (tests; by default each activity has its own patience, see core/engine/activity.py)."""
        super().__init__(parent)
        self.process = process
        self.sample_limit = sample_limit
        self.keep_runs = keep_runs
        self.stuck_after_s = stuck_after_s
        self._stopped = False
        self._dead = False               # crashed: commands are dropped until restart()
        self.service = None              # thread mode: the EngineService (tests may look inside)
        self._host = None                # process mode: the EngineProcess
        self._make()

    def _make(self) -> None:
        if self.process:
            from visualizer.core.engine.process import EngineProcess
            self._host = EngineProcess(self._on_event, sample_limit=self.sample_limit,
                                       stuck_after_s=self.stuck_after_s, options={"keep_runs": self.keep_runs})
        else:
            from visualizer.core.engine.service import EngineService
            self.service = EngineService(self._on_event, sample_limit=self.sample_limit, keep_runs=self.keep_runs)
            self._thread = threading.Thread(target=self._run_service, args=(self.service,), name="engine",
                                            daemon=True)

    def _run_service(self, service) -> None:
        try:
            service.run()
        except BaseException:  # noqa: BLE001 - last line of defence: say so, never take the window down
            self._on_event("crashed", "The worker thread crashed:\n" + traceback.format_exc(limit=5))

    def _on_event(self, name: str, payload) -> None:
        """Any thread: the engine's event becomes a queued signal."""
        if name == "crashed":
            self._dead = True
            self.failed.emit(payload)
            self.crashed.emit(payload)
        elif name == "started_training":
            self.started_training.emit()
        elif name == "responsive":
            self.responsive.emit()
        elif name in _EVENTS:
            getattr(self, name).emit(payload)
        else:
            log.warning("unknown event from the engine: %s", name)

    def _call(self, name: str, *args, **kwargs) -> None:
        if self._stopped or self._dead:
            return  # nobody would read it
        if self.service is not None:
            getattr(self.service, name)(*args, **kwargs)
        else:
            self._host.call(name, *args, **kwargs)

    # ---- the engine's commands ------------------------------------------------------
    def load_sample(self) -> None:
        self._call("load_sample")

    def load_file(self, path: str, **kwargs) -> None:
        """kwargs go to checkpoint.load_model (arch, arch_options, model_spec, trust)."""
        self._call("load_file", str(path), **kwargs)

    def load_bundle(self, bundle) -> None:
        """Thread mode only (a live model cannot cross a process boundary): scripts and tests."""
        if self.service is None:
            raise RuntimeError("load_bundle needs the thread worker")
        self._call("load_bundle", bundle)

    def load_user_model(self, spec: str) -> None:
        self._call("load_user_model", str(spec))

    def build(self, arch: str, options: dict | None = None, *, seed: int = 0) -> None:
        self._call("build", arch, dict(options or {}), seed=int(seed))

    def set_dataset(self, spec: str, *, limit: int | None = None, augment=None, seed: int = 0) -> None:
        self._call("set_dataset", spec, limit=limit, augment=augment, seed=int(seed))

    def start_training(self, config, *, augment=None, paused: bool = False, steps: int = 0) -> None:
        self._call("start_training", config, augment=augment, paused=paused, steps=steps)

    def pause(self) -> None:
        self._call("pause")

    def resume(self) -> None:
        self._call("resume")

    def step(self, n: int = 1) -> None:
        self._call("step", n)

    def stop(self) -> None:
        self._call("stop")

    def set_lr(self, lr: float) -> None:
        self._call("set_lr", lr)

    def set_speed(self, steps_per_sec: float) -> None:
        self._call("set_speed", steps_per_sec)

    def reset_weights(self, seed: int | None = None) -> None:
        self._call("reset_weights", seed)

    def set_input_format(self, mean, std, class_names=()) -> None:
        """The open model's normalisation (per channel) and, if given, its class names."""
        self._call("set_input_format", tuple(mean), tuple(std), tuple(class_names))

    def save(self, path: str) -> None:
        self._call("save", str(path))

    def save_safetensors(self, path: str) -> None:
        self._call("save_safetensors", str(path))

    def resume_run(self, checkpoint: str, **kwargs) -> None:
        """Continue an autosaved run where it was (kwargs: snapshot_hz, device, max_steps_per_sec, model_spec)."""
        self._call("resume_run", str(checkpoint), **kwargs)

    def request_capture(self, request) -> None:
        self._call("request_capture", request)

    def snapshot_consumed(self) -> None:
        self._call("snapshot_consumed")

    def probe_consumed(self) -> None:
        self._call("probe_consumed")

    def analyse(self, kind: str, params: dict | None = None, request_id: int = 0) -> None:
        self._call("analyse", kind, dict(params or {}), int(request_id))

    def cancel_analysis(self, request_id: int) -> None:
        self._call("cancel_analysis", int(request_id))

    def watch_top_patches(self, layer: str | None) -> None:
        self._call("watch_top_patches", layer)

    def set_live_health(self, on: bool) -> None:
        self._call("set_live_health", bool(on))

    def set_side_probe_always(self, on: bool) -> None:
        self._call("set_side_probe_always", bool(on))

    # ---- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        if self.service is not None:
            self._thread.start()
        else:
            self._host.start()

    def is_running(self) -> bool:
        if self.service is not None:
            return self._thread.is_alive()
        return self._host.is_alive()

    @property
    def pid(self) -> int | None:
        """The child process's id (process mode), else None."""
        return self._host.pid if self._host is not None else None

    @property
    def last_pulse(self):
        """The engine process's latest heartbeat (``messages.Pulse``: what it was doing), None in thread mode."""
        return self._host.last_pulse if self._host is not None else None

    @property
    def can_be_stopped(self) -> bool:
        """Whether ``stop_engine`` can end the engine whatever it is doing (only a process can be)."""
        return self._host is not None

    def stop_engine(self) -> bool:
        """End a stuck engine now (SIGTERM, then SIGKILL); ``crashed`` follows and the caller restarts it.

        False in thread mode: a thread cannot be ended from outside.
        """
        if self._host is None or self._stopped or self._dead:
            return False
        self._host.stop_now()
        return True

    def restart(self) -> None:
        """A fresh engine after a crash (no model, no data: the caller reopens them)."""
        if self._stopped:
            return
        self._end(timeout_s=None)
        self._make()
        self._dead = False
        self.start()

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Stop training, end the engine and wait for it; within 5 s whatever it does. Safe to call twice.

        ``timeout_ms``: the grace for a clean stop (default: ``process.STOP_GRACE_S``, or
        ``THREAD_JOIN_S`` for a thread); a process still running then is terminated, then killed.
        """
        if self._stopped:
            return not self.is_running()
        self._stopped = True
        return self._end(None if timeout_ms is None else timeout_ms / 1000)

    def _end(self, timeout_s: float | None) -> bool:
        if self.service is not None:
            self.service.request_quit()
            if self._thread.is_alive():
                self._thread.join(THREAD_JOIN_S if timeout_s is None else timeout_s)
                if self._thread.is_alive():
                    # A step can take long (a big model on a CPU): the thread is a daemon and ends with us.
                    log.warning("the training step is still running; it is abandoned")
            return not self._thread.is_alive()
        if timeout_s is None:
            return self._host.shutdown()
        return self._host.shutdown(timeout_s)
