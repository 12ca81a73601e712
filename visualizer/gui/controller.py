"""The GUI-side owner of the worker: user actions in, snapshots into the session.

Turns clicks into worker commands and puts what the worker sends into the Session, whose
signals the views follow (``View.follow``). Once every view has drawn a snapshot (the
frame pacer says so) the worker is told it may make another one: at most one snapshot
is in flight, and the worker never runs ahead of what the window has drawn.

Dialogs are reached through replaceable callables (``ask_trust``,
``ask_model_spec``, ``offer_safetensors``) so that tests can answer them
without a modal event loop; the main window installs the real dialogs.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Callable

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from visualizer.core.config import TrainConfig
from visualizer.core.engine.messages import ArchitectureRequest, DataInfo, LoadedModel, TrustRequest, describe_model
from visualizer.core.errors import LoadError
from visualizer.core.resources import SAMPLE_DATASET
from visualizer.core.snapshot import (
    OUT_OF_MEMORY,
    CaptureRequest,
    Diverged,
    EpochEnd,
    Finished,
    ProbeSnapshot,
    TrainingSnapshot,
    frozen_array,
)

from .compare import COMPARE_MODES, difference
from .session import PAUSED, RUNNING, STOPPED, Session
from .settings import Settings
from .views.frame_pacer import FramePacer
from .worker import Worker

log = logging.getLogger(__name__)
CAPTURE_ALL_MAX_LAYERS = 80  # beyond this, capture only the selected layer (big models)


class Controller(QObject):
    message = pyqtSignal(str, str)        # level ("info" | "warning" | "error"), text
    notice = pyqtSignal(str)              # short, status-bar only
    data_changed = pyqtSignal(object)     # DataInfo
    saved = pyqtSignal(str)
    run_ended = pyqtSignal(object)        # Finished | Diverged: the last word on a run
    run_file_started = pyqtSignal(str)    # a run's .cnnviz file: being written now, listed in recent files
    engine_unresponsive = pyqtSignal(object)  # messages.Unresponsive: offer to stop it (gui/recovery.py)
    engine_responsive = pyqtSignal()
    engine_restarted = pyqtSignal()       # after a crash: a fresh engine (gui/recovery.py offers to resume)
    external_ended = pyqtSignal()         # the window shows the engine's model again (a run or live stream was left)
    analysis_ready = pyqtSignal(object)   # messages.AnalysisResult (the view that asked keeps its request_id)
    analysis_progress = pyqtSignal(object)  # messages.AnalysisProgress
    health_report = pyqtSignal(object)    # health.HealthReport, live during training
    health_alerts = pyqtSignal(object)    # tuple of health.HealthAlert: new flags, each reported once
    live_top_patches = pyqtSignal(object)  # channels.TopPatches accumulated while training runs

    def __init__(self, settings: Settings | None = None, parent: QObject | None = None, *,
                 sample_limit: int | None = None, process: bool = False, stuck_after_s: float | None = None):
        super().__init__(parent)
        self.settings = settings or Settings()
        self.session = Session(self)
        # process=True: training in a child process (the app); False: a thread (tests, scripts).
        self.worker = Worker(sample_limit=sample_limit, process=process, stuck_after_s=stuck_after_s)
        self.views: list = []
        self.data: DataInfo | None = None
        self.config_provider: Callable[[], TrainConfig] = TrainConfig
        self.augment_provider: Callable[[], object] = lambda: None
        # Dialog hooks; the main window replaces them with real dialogs.
        self.ask_trust: Callable[[TrustRequest], bool] = lambda req: False
        self.ask_model_spec: Callable[[str, object], dict | None] = lambda path, info: None
        self.offer_safetensors: Callable[[str], str | None] = lambda source: None
        self._input_image: np.ndarray | None = None   # drawn/opened image (C,H,W) in [0,1]; None: dataset sample
        self._input_label: int | None = None
        self._input_via: tuple[int, int] | None = None
        self._probe_index = 0
        self._probe_split = ""         # "": the probe split; "train": a training image (a top patch's)
        self._request_id = 0
        self._analysis_id = 0
        self._external = False        # a replayed run or a live stream fills the session, not the engine
        self.pinned: ProbeSnapshot | None = None   # A of the compare mode (any source: engine, run, live)
        self.compare_mode = "B"
        self._raw_training: TrainingSnapshot | None = None   # the latest as it came, before compare
        self._raw_probe_snap: ProbeSnapshot | None = None
        self._engine_model: LoadedModel | None = None
        self._closed = False
        self._sample_limit = sample_limit
        self._dataset_limits: dict[str, int | None] = {}  # spec -> limit asked for (to reopen after a crash)
        self._deferred_start: tuple | None = None   # (config, augment): Start pressed before a model was open
        self._connect_worker()

    # ==== lifecycle ================================================================
    def start(self) -> None:
        self.worker.start()

    def shutdown(self) -> bool:
        """Stop training and join the worker, process or thread (closeEvent and test teardown)."""
        if self._closed:
            return True
        self._closed = True
        return self.worker.shutdown()

    def _connect_worker(self) -> None:
        w = self.worker
        w.model_loaded.connect(self._on_model_loaded)
        w.data_ready.connect(self._on_data_ready)
        w.training_snapshot.connect(self._on_training_snapshot)
        w.probe_ready.connect(self._on_probe)
        w.epoch_end.connect(self._on_epoch)
        w.finished.connect(self._on_finished)
        w.diverged.connect(self._on_diverged)
        w.failed.connect(self._on_failed)
        w.trust_required.connect(self._on_trust_required)
        w.architecture_required.connect(self._on_architecture_required)
        w.notice.connect(self.notice)
        w.saved.connect(self._on_saved)
        w.crashed.connect(self._on_crashed)
        w.unresponsive.connect(self.engine_unresponsive)
        w.responsive.connect(self.engine_responsive)
        w.run_started.connect(self._on_run_started)
        w.analysis.connect(self.analysis_ready)
        w.analysis_progress.connect(self.analysis_progress)
        w.health_report.connect(self.health_report)
        w.health_alerts.connect(self.health_alerts)
        w.live_top_patches.connect(self.live_top_patches)

    # ==== views ====================================================================
    def add_view(self, view) -> None:
        """``view`` follows the session; its clicks on layers and channels come back here."""
        self.views.append(view)
        view.follow(self.session)
        if hasattr(view, "layer_requested"):
            view.layer_requested.connect(self.select_layer)
        if hasattr(view, "channel_selected"):
            view.channel_selected.connect(self.select_channel)

    # ==== opening models ===========================================================
    def open_sample(self) -> None:
        self.worker.load_sample()

    def open_path(self, path: str | os.PathLike) -> bool:
        """Open a checkpoint, a state dict (asks for the architecture) or a model .py file."""
        path = os.fspath(path)
        file_part = path.rpartition(":")[0] if ".py:" in path else path
        if file_part.endswith(".py"):
            spec = path if file_part != path else None
            if spec is None:
                answer = self.ask_model_spec(path, None) or {}
                spec = answer.get("model_spec") or answer.get("path")
            if not spec:
                return False
            self.worker.load_user_model(spec)
            return True
        if not os.path.exists(path):
            self.message.emit("error", f"Could not open the file.\n\n{path}: no such file")
            return False
        self.worker.load_file(path)
        return True

    def _on_architecture_required(self, req: ArchitectureRequest) -> None:
        answer = self.ask_model_spec(req.path, None)
        if not answer:
            self.notice.emit(f"Not opened: {os.path.basename(req.path)} needs an architecture.")
            return
        kwargs = dict(req.load_kwargs)
        kwargs.update({k: v for k, v in answer.items() if k in ("arch", "arch_options", "model_spec")})
        self.worker.load_file(req.path, **kwargs)

    def _on_trust_required(self, req: TrustRequest) -> None:
        store = trust_store()
        sha = getattr(req.info, "sha256", None)
        if not sha:
            # Fail closed: without the hash the loader cannot tell this file from one swapped since the dialog.
            self.message.emit("error", f"Not opened: {req.path} needs trust, but its SHA-256 hash is unknown, "
                                       "so it cannot be verified.")
            return
        known = store is not None and store.is_trusted(sha)
        if dict(req.load_kwargs).get("trust"):
            known = False  # already retried with trust: the file changed; ask again
        remember = False
        if not known:
            answer = self.ask_trust(req)
            # ask_trust answers accepted, or (accepted, remember this file by its hash)
            accepted, remember = answer if isinstance(answer, tuple) else (bool(answer), False)
            if not accepted:
                self.notice.emit(f"Not opened: {os.path.basename(req.path)} was not trusted.")
                return
        if store is not None and remember:
            try:
                store.trust(sha)
            except LoadError as exc:   # the file still opens, for this session; only the memory failed
                self.message.emit("warning", f"{os.path.basename(req.path)} opens now, but the choice to trust "
                                             f"it was not remembered (it will be asked again next time):\n\n{exc}")
        kwargs = dict(req.load_kwargs)
        # The hash, not True: the loader then refuses a file swapped since the dialog.
        kwargs["trust"] = sha
        self.worker.load_file(req.path, **kwargs)

    def _on_model_loaded(self, model: LoadedModel) -> None:
        self._engine_model = model
        if self._external:                # a model opened while a run was shown: back to the engine
            self._external = False
            self.external_ended.emit()
        self.session.set_model(model)   # the views follow: cleared, then the new model's layer
        if model.source:
            self.settings.add_recent(model.source)
        self._send_request()
        self.notice.emit(f"Opened {describe_model(model)}")
        if self._deferred_start is not None:
            config, augment = self._deferred_start
            self._deferred_start = None
            self.start_training(config, augment)
        if model.trusted and model.source and not model.source.endswith(".safetensors"):
            target = self.offer_safetensors(model.source)
            if target:
                self.worker.save_safetensors(target)

    def _on_data_ready(self, info: DataInfo) -> None:
        self.data = info
        self.data_changed.emit(info)

    # ==== training =================================================================
    def toggle_run(self) -> None:
        """Space: start when stopped, pause when running, resume when paused."""
        state = self.session.training_state
        if state == STOPPED:
            self.start_training()
        elif state == RUNNING:
            self.pause()
        else:
            self.resume()

    def start_training(self, config: TrainConfig | None = None, augment=None) -> None:
        if self.session.model is None:
            # Pressed while the model is still loading (right after launch): start once it is open.
            self._deferred_start = (config, augment)
            self.notice.emit("Training starts as soon as the model is loaded.")
            return
        self.end_external()   # training shows the engine's model again
        if self._refuse_training():
            return
        config = config or self.config_provider()
        self.session.clear_history()
        self.worker.start_training(config, augment=augment if augment is not None else self.augment_provider())
        self.session.set_training_state(RUNNING)

    def pause(self) -> None:
        if self.session.training_state == RUNNING:
            self.worker.pause()
            self.session.set_training_state(PAUSED)

    def resume(self) -> None:
        if self.session.training_state == PAUSED:
            self.worker.resume()
            self.session.set_training_state(RUNNING)

    def step(self) -> None:
        """One batch; from Stopped this starts a run that waits paused after it."""
        self.end_external()
        if self.session.model is None or self._refuse_training():
            return
        if self.session.training_state == STOPPED:
            self.session.clear_history()
            self.worker.start_training(self.config_provider(), augment=self.augment_provider(),
                                       paused=True, steps=1)
        else:
            self.worker.step(1)
        self.session.set_training_state(PAUSED)

    def _refuse_training(self) -> bool:
        """A model that cannot be trained here (an ONNX file): say why instead of asking the engine."""
        reason = getattr(self.session.model, "training_refusal", "")
        if reason:
            self.message.emit("warning", f"Training is not available for this model.\n\n{reason}.")
        return bool(reason)

    def stop(self) -> None:
        # The state turns Stopped when the worker reports Finished, not before:
        # until then a step may still be running.
        self.worker.stop()

    def set_lr(self, lr: float) -> None:
        try:
            self.worker.set_lr(float(lr))
        except ValueError as exc:
            self.message.emit("warning", str(exc))

    def set_speed(self, steps_per_sec: float) -> None:
        self.worker.set_speed(float(steps_per_sec))

    def reset_weights(self) -> None:
        # Seeded like the training panel's runs: the same seed gives the same fresh weights.
        self.worker.reset_weights(seed=self._seed())

    def save(self, path: str) -> None:
        self.worker.save(path)

    def _on_training_snapshot(self, snap: TrainingSnapshot) -> None:
        if self._external:
            self.worker.snapshot_consumed()   # the engine goes on; the window shows a run meanwhile
            return
        if self.session.latest_training is None:
            log.info("training: first snapshot at step %d", snap.step)  # scripts wait for this line
        self.session.set_training(self._compared_training(snap))
        # Another one may come once every view has drawn this one (at once if none shows it).
        FramePacer.shared().when_drawn(self.worker.snapshot_consumed)

    def _on_probe(self, snap: ProbeSnapshot) -> None:
        if self._external:
            self.worker.probe_consumed()
            return
        self.session.set_probe(self._compared(snap))
        FramePacer.shared().when_drawn(self.worker.probe_consumed)

    def _on_epoch(self, ev: EpochEnd) -> None:
        self.session.add_epoch(ev)

    def _on_finished(self, ev: Finished) -> None:
        self.session.set_training_state(STOPPED)
        self.run_ended.emit(ev)
        what = "ran out of memory" if ev.reason == OUT_OF_MEMORY else ev.reason
        self.notice.emit(f"Training {what} at step {ev.step}.")

    def _on_diverged(self, ev: Diverged) -> None:
        self.session.set_training_state(STOPPED)
        self.run_ended.emit(ev)
        self.message.emit("warning", ev.message)

    def _on_failed(self, text: str) -> None:
        # A failed command (save, load, probe) leaves a run going; a run that failed ends
        # with Finished (reason "failed") and a dead worker with ``crashed``: those stop.
        if self._deferred_start is not None and self.session.model is None:
            self._deferred_start = None   # the model Start waited for did not open: start nothing later
        self.message.emit("error", text)

    def _on_run_started(self, info) -> None:
        if info.run_file:
            self.settings.add_recent(info.run_file)   # File > Open recent lists the run while it is written
            self.run_file_started.emit(info.run_file)

    def resume_run(self, record) -> None:
        """Continue an autosaved run (``core.engine.autosave.AutosaveRecord``) exactly where it was saved;
        only how it is watched (snapshot rate, device, speed) comes from the training panel."""
        config = self.config_provider()
        spec = record.model if ".py:" in (record.model or "") else None   # the user's own file, run again
        self.session.clear_history()
        self.worker.resume_run(record.checkpoint, snapshot_hz=config.snapshot_hz, device=config.device,
                               max_steps_per_sec=config.max_steps_per_sec, model_spec=spec)
        self.session.set_training_state(RUNNING)

    def stop_engine(self) -> bool:
        """The user's answer to an unresponsive engine: end it now; ``_on_crashed`` restarts it."""
        return self.worker.stop_engine()

    def _on_crashed(self, _text: str) -> None:
        """The worker died (``failed`` carried the message): a fresh one, the model and data reopened."""
        if self._closed:
            return
        self.session.set_training_state(STOPPED)
        model, data = self.session.model, self.data
        suspect = self._suspect(model)
        self.worker.restart()
        if data is not None:
            default = self._sample_limit if data.spec == SAMPLE_DATASET else None
            self.worker.set_dataset(data.spec, limit=self._dataset_limits.get(data.spec, default),
                                    augment=self.augment_provider(), seed=self._seed())
        if suspect:   # its own code was running when the engine died or hung: it could do so again
            self.message.emit("warning", f"{suspect} was not reopened: its code was running when the training "
                                         "process ended. Open it again (File › Open recent) once it is fixed.")
            model = None
        self._reopen(model)
        self.notice.emit("Restarted the training process; reopening the model.")
        self.engine_restarted.emit()

    def _suspect(self, model: LoadedModel | None) -> str | None:
        """The user's model file (``file.py:Name``) if the dead engine was last busy running it."""
        pulse = self.worker.last_pulse
        arch = (model.arch or "") if model is not None else ""
        if pulse is None or ".py:" not in arch or not pulse.model_file:
            return None
        return arch.rpartition(":")[0] if os.path.realpath(pulse.model_file) == os.path.realpath(
            arch.rpartition(":")[0]) else None

    def _reopen(self, model: LoadedModel | None) -> None:
        """Open ``model`` again as it was opened (its file, user class or architecture); else the sample."""
        from visualizer.core.architectures import ARCHITECTURES
        arch = (model.arch or "") if model is not None else ""
        if model is None:
            self.worker.load_sample()
        elif ".py:" in arch:
            self.worker.load_user_model(arch)
        elif model.source and os.path.exists(model.source):
            self.worker.load_file(model.source)  # asks for trust again unless its hash is remembered
        elif arch in ARCHITECTURES:
            self.worker.build(arch, dict(model.arch_options), seed=self._seed())
        else:
            self.worker.load_sample()

    def _on_saved(self, path: str) -> None:
        self.notice.emit(f"Saved {path}")
        self.saved.emit(path)

    # ==== showing a run or a live stream instead of the engine =========================
    def show_external(self, model: LoadedModel) -> None:
        """The session shows ``model`` from a run file or a live recorder until ``end_external``."""
        self._external = True
        self.session.set_model(model)

    def show_external_snapshot(self, snap: TrainingSnapshot) -> None:
        if self._external:
            self._raw_training = snap
            self.session.set_training(self._compared_training(snap))

    # ==== compare: A pinned, B what comes ==============================================
    def pin(self, probe: ProbeSnapshot | None = None) -> None:
        """Pin ``probe`` (default: the one shown, as it came) as A: two steps of a run, two runs or
        two checkpoints of one model then compare as B, A or B - A."""
        self.pinned = probe if probe is not None else self._raw_probe()
        self._reshow()

    def set_compare(self, mode: str) -> None:
        if mode not in COMPARE_MODES:
            raise ValueError(f"compare mode must be one of {COMPARE_MODES}, not {mode!r}")
        self.compare_mode = mode
        self._reshow()

    def _raw_probe(self) -> ProbeSnapshot | None:
        if self._raw_training is not None and self._raw_training.probe is not None:
            return self._raw_training.probe
        return self._raw_probe_snap

    def _compared(self, probe: ProbeSnapshot) -> ProbeSnapshot:
        self._raw_probe_snap = probe
        a = self.pinned
        if a is None or self.compare_mode == "B":
            return probe
        return a if self.compare_mode == "A" else difference(probe, a)

    def _compared_training(self, snap: TrainingSnapshot) -> TrainingSnapshot:
        self._raw_training = snap
        if snap.probe is None:
            return snap
        return dataclasses.replace(snap, probe=self._compared(snap.probe))

    def _reshow(self) -> None:
        if self._raw_training is not None and self.session.latest_training is not None:
            self.session.set_training(self._compared_training(self._raw_training))
        elif self._raw_probe_snap is not None:
            self.session.set_probe(self._compared(self._raw_probe_snap))

    def end_external(self) -> None:
        """Back to the engine's model (and a fresh probe of it)."""
        if not self._external:
            return
        self._external = False
        self.external_ended.emit()
        if self._engine_model is not None:
            self.session.set_model(self._engine_model)
            self._send_request()

    @property
    def showing_external(self) -> bool:
        return self._external

    # ==== looking into the model =================================================
    def request_analysis(self, kind: str, **params) -> int:
        """Ask the engine to look at the open model (core/engine/analysis.py); returns the request id
        the ``analysis_ready`` answer will carry."""
        self._analysis_id += 1
        self.worker.analyse(kind, params, self._analysis_id)
        return self._analysis_id

    def cancel_analysis(self, request_id: int) -> None:
        self.worker.cancel_analysis(request_id)

    def watch_top_patches(self, layer: str | None) -> None:
        """Accumulate ``layer``'s top patches from the training passes while a run goes (None: none)."""
        self.worker.watch_top_patches(layer)

    # ==== selection and input ===================================================
    def select_layer(self, name: str | None) -> None:
        if name == self.session.layer:
            return
        self.session.set_layer(name)   # the views follow
        self._send_request()

    def select_channel(self, channel: int | None) -> None:
        self.session.set_channel(channel)

    def use_sample(self, index: int, split: str = "") -> None:
        """Probe the ``index``-th sample of the dataset's probe split (or of ``split``: "train", "val")."""
        self._input_image, self._input_label = None, None
        self._probe_index = max(0, int(index))
        self._probe_split = str(split or "")
        self._send_request()

    def use_image(self, image01: np.ndarray, label: int | None = None, note: str = "", *,
                  via: tuple[int, int] | None = None) -> None:
        """Probe a drawn or opened image: (C, H, W) or (H, W) in [0, 1] at any size. The engine fits
        it to the model's input the way the dataset's images were (a drawing arrives at the dataset's
        own resolution; ``via``, an (H, W) to pass through first: the training data's own size)."""
        img = np.asarray(image01, dtype=np.float32)
        if img.ndim == 2:
            img = img[None]
        self._input_image = frozen_array(img)  # crosses to the engine: never the caller's writable array
        self._input_via = tuple(int(v) for v in via) if via else None
        self._input_label = label
        if note:
            self.notice.emit(note)
        self._send_request()

    def use_probe_input(self, probe_input) -> None:
        """The InputPanel's ProbeInput(image01, label, note); image01 None means a dataset sample."""
        image = getattr(probe_input, "image01", None)
        if image is None:
            self.use_sample(getattr(probe_input, "index", 0) or 0)
        else:
            self.use_image(image, getattr(probe_input, "label", None), getattr(probe_input, "note", "") or "")

    def set_dataset(self, spec: str, *, limit: int | None = None, augment=None) -> None:
        self._dataset_limits[spec] = limit
        self.worker.set_dataset(spec, limit=limit, augment=augment, seed=self._seed())

    def dataset_limit(self, spec: str) -> int | None:
        """The sample limit in force for ``spec`` (what set_dataset was last given, or the default)."""
        return self._dataset_limits.get(spec, self.default_limit(spec))

    def default_limit(self, spec: str) -> int | None:
        """All of ``spec``, unless this controller was made with a smaller sample data set (tests)."""
        return self._sample_limit if spec == SAMPLE_DATASET else None

    def rebuild(self, arch: str, options: dict) -> None:
        self.worker.build(arch, options, seed=self._seed())

    def _seed(self) -> int:
        """The training panel's seed: it also initialises a built model and splits the data (engine.py)."""
        return int(getattr(self.config_provider(), "seed", 0))

    def configure(self, options: dict, augment=None) -> None:
        """The training panel's dataset/architecture/options: change only what differs."""
        from visualizer.core.architectures.catalog import ARCHITECTURES, MODEL_OPTION_KEYS
        model = self.session.model
        spec = options.get("dataset")
        current_spec = self.data.spec if self.data is not None else None
        if spec and spec != current_spec:
            self._dataset_limits[spec] = None
            self.worker.set_dataset(spec, augment=augment, seed=self._seed())
        arch = options.get("arch")
        wanted = {k: options[k] for k in MODEL_OPTION_KEYS if k in options}
        have = dict(model.arch_options) if model is not None else {}
        if arch not in ARCHITECTURES:
            return   # the panel shows a model opened from a file: there is nothing to build
        if model is None or model.arch != arch or any(have.get(k) != v for k, v in wanted.items()):
            self.worker.build(arch, wanted, seed=self._seed())

    def capture_request(self) -> CaptureRequest:
        model = self.session.model
        layers: tuple[str, ...] = ()
        filters: tuple[str, ...] = ()
        if model is not None:
            infos = list(getattr(model.info, "layers", ()))
            layer = self.session.layer
            if len(infos) <= CAPTURE_ALL_MAX_LAYERS:
                layers = ("*",)
            elif layer:
                layers = (layer,)
            convs = [li.name for li in infos if getattr(li, "kind", "") == "conv"]
            if layer in convs:
                filters = (layer,)
            elif convs:
                filters = (convs[0],)
        self._request_id += 1
        return CaptureRequest(layers=layers, filter_layers=filters, probe_input=self._input_image,
                              probe_via=self._input_via, probe_label=self._input_label,
                              probe_index=self._probe_index, probe_split=self._probe_split,
                              request_id=self._request_id)

    def _send_request(self) -> None:
        if self.session.model is not None and not self._external:
            self.worker.request_capture(self.capture_request())


def trust_store():
    """The per-user TrustStore (None if the checkpoint module does not provide one)."""
    try:
        from visualizer.core.checkpoint import TrustStore
    except ImportError:
        return None
    return TrustStore()  # its own file under the same per-user config folder
