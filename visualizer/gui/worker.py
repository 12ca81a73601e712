"""The worker thread: the only owner of the model, the Trainer and the Inspector.

The GUI thread never touches a tensor. It talks to the worker through

* a command queue (load, dataset, build, start, reset, save, quit) processed in order,
* a one-slot probe mailbox (the latest capture request wins; older ones are dropped),
* a :class:`TrainingControl` for pause/resume/step/stop/learning rate, which is
  thread-safe and read by the trainer between steps,

and hears back through queued signals carrying only frozen snapshots and plain
data. At most one training snapshot and one probe snapshot are in flight: the
GUI calls :meth:`Worker.snapshot_consumed` / :meth:`Worker.probe_consumed` after
applying each, so however slow the GUI is, memory and the event queue stay bounded.

Every exception in the worker thread is caught and reported through ``failed``:
an exception escaping ``QThread.run`` would abort the process (PITFALLS.md).
"""
from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from PyQt6.QtCore import QObject, QThread, pyqtSignal

from visualizer.core import resources
from visualizer.core.config import TrainConfig
from visualizer.core.errors import LoadError, ModelError, TrustRequired
from visualizer.core.model_bundle import ModelBundle
from visualizer.core.snapshot import (
    OUT_OF_MEMORY,
    CaptureRequest,
    Diverged,
    EpochEnd,
    Finished,
    TrainingSnapshot,
    frozen_array,
)
from visualizer.core.training import Trainer, TrainingControl, probe_input, reinitialise

from .session import LoadedModel

log = logging.getLogger(__name__)
SAMPLE_MODEL = resources.sample_model_path()  # trained on the built-in digits it opens with
SAMPLE_DATASET = "digits"
GALLERY_BYTES = 8 << 20    # dataset thumbnails sent to the GUI once per dataset
GALLERY_MAX = 512


@dataclass(frozen=True)
class DataInfo:
    """What the GUI may know about the prepared dataset (plain data, read-only arrays)."""

    name: str
    spec: str                   # what load_dataset was given (builtin name or path)
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    n_train: int
    n_val: int
    labels: np.ndarray          # (n_val,) int64 labels of the probe split, to pick by class
    gallery: np.ndarray         # (G, C, H, W) uint8 first G probe-split images as the model sees them
    augment: tuple = ()
    native_shape: tuple[int, int, int] = (0, 0, 0)  # the dataset's own (C, H, W) before resizing


@dataclass(frozen=True)
class TrustRequest:
    """A load that needs the user's answer (consent, or which architecture); retry with it."""

    path: str
    info: Any                   # checkpoint.ModelFileInfo (or None)
    message: str
    load_kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass
class _Command:
    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _DataSource:
    """A data set read from disk and how it was asked for: committed together with what was prepared from it."""

    dataset: Any                # ImageDataset
    spec: str
    limit: int | None
    augment: Any                # datasets.Augment or None


# Commands that replace the model or the data: they end a running training first.
_REPLACING = {"load", "load_user", "bundle", "sample", "build", "dataset"}


ORPHAN_GRACE_S = 5.0               # a worker whose GUI died stops within this, cleanly or not
SIDE_PROBE_MIN_PARAMS = 1_000_000  # below this a training step is quick: the trainer answers itself
SIDE_PROBE_AFTER_S = 0.15          # a step running longer than this is "slow"
SIDE_PROBE_REFRESH_S = 1.0         # copy the trained weights into the viewing copy at most this often


class _SideProbe:
    """Answers capture requests from a copy of the model while a slow training step runs.

    With ResNet-18 a CPU step takes seconds; a layer, channel or input change
    must still show within 200 ms. The worker thread is inside the step, so a
    second thread probes a private copy of the model (eval mode, its own hooks),
    whose weights the worker refreshes between steps. The copy is never trained
    and the live model is never touched from here.
    """

    def __init__(self, worker: "WorkerCore", bundle: ModelBundle, data):
        self._worker = worker
        self._data = data
        self._lock = threading.Lock()      # the copy is either being probed or being refreshed
        model = copy.deepcopy(bundle.model).cpu().eval()  # made before any hook exists on the original
        self._bundle = ModelBundle(model=model, input_shape=bundle.input_shape, class_names=bundle.class_names,
                                   mean=bundle.mean, std=bundle.std, arch=bundle.arch,
                                   arch_options=dict(bundle.arch_options), source=bundle.source)
        self._inspector = None
        self._last_refresh = time.monotonic()
        self.step_ended = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="side-probe", daemon=True)
        self._thread.start()

    def after_step(self, live: torch.nn.Module) -> None:
        """Worker thread, between two steps."""
        now = time.monotonic()
        self.step_ended = now
        if now - self._last_refresh < SIDE_PROBE_REFRESH_S:
            return
        with self._lock:
            with torch.no_grad():
                self._bundle.model.load_state_dict(live.state_dict())
        self._last_refresh = time.monotonic()
        self.step_ended = self._last_refresh

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self._inspector is not None:
            self._inspector.close()
            self._inspector = None

    def _loop(self) -> None:
        w = self._worker
        while not self._stop.wait(0.02):
            control = w._control
            if control is None or control.paused or time.monotonic() - self.step_ended < SIDE_PROBE_AFTER_S:
                continue  # quick steps, or paused: the trainer itself answers requests
            request = w._take_mail()
            if request is None:
                continue
            try:
                with self._lock:
                    if self._inspector is None:
                        from visualizer.core.inspector import Inspector
                        self._inspector = Inspector(self._bundle)
                    image01, label = probe_input(request, self._data, self._bundle.input_shape)
                    snap = self._inspector.probe(request, image01, label)
            except Exception as exc:  # noqa: BLE001 - a failed look must not end training
                w.probe_consumed()
                w.emit("notice", f"Could not update the views during the step: {exc}")
                continue
            w.emit("probe_ready", snap)


class _Thread(QThread):
    def __init__(self, core: "WorkerCore", on_crash):
        super().__init__()
        self._core = core
        self._on_crash = on_crash

    def run(self) -> None:  # never let anything escape: that aborts the process
        try:
            self._core._loop()
        except BaseException:  # noqa: BLE001 - last line of defence
            self._on_crash("The worker thread crashed:\n" + traceback.format_exc(limit=5))


class WorkerCore:
    """Everything the worker does, without Qt: run by a QThread or in a child process.

    The command methods are safe to call from another thread (the GUI thread, or
    the child process's listener thread); ``_loop`` runs in the worker's own thread.
    Results leave through ``emit(signal_name, payload)``.
    """

    def __init__(self, emit, *, sample_limit: int | None = None):
        self.emit = emit
        self._sample_limit = sample_limit  # fewer samples of the sample dataset (tests, benches)
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._mailbox_lock = threading.Lock()
        self._mailbox: CaptureRequest | None = None
        self._probe_in_flight = False
        self._control: TrainingControl | None = None
        self._quit = threading.Event()
        # Worker-thread state (only ever touched by _loop and what it calls).
        self._bundle: ModelBundle | None = None
        self._fresh = False              # built here, not loaded: normalisation follows the data
        self._trusted = False
        self._dataset = None             # ImageDataset
        self._dataset_spec: str | None = None
        self._limit: int | None = None
        self._augment = None
        self._data = None                # PreparedData
        self._inspector = None           # idle Inspector (closed while a Trainer owns the hooks)
        self._trainer: Trainer | None = None
        self._seed = 0                   # the last run's TrainConfig.seed: what an idle reset uses
        self._last_request = CaptureRequest()
        self._side: _SideProbe | None = None
        self.side_probe_always = False   # tests: use the side probe for small models too

    def request_quit(self) -> None:
        self._quit.set()
        if self._control is not None:
            self._control.stop()
        self._commands.put(_Command("quit"))

    def set_side_probe_always(self, on: bool) -> None:
        self.side_probe_always = bool(on)

    # ==== commands (GUI thread) =====================================================
    def _send(self, name: str, *args, **kwargs) -> None:
        if name in _REPLACING and self._control is not None:
            self._control.stop()
        self._commands.put(_Command(name, args, kwargs))

    def load_sample(self) -> None:
        self._send("sample")

    def load_file(self, path: str, **kwargs) -> None:
        """kwargs go to checkpoint.load_model (arch, arch_options, model_spec, trust)."""
        self._send("load", str(path), **kwargs)

    def load_bundle(self, bundle: ModelBundle) -> None:
        """Hand over a ModelBundle built elsewhere (scripts, tests); the caller must not touch it again."""
        self._send("bundle", bundle)

    def load_user_model(self, spec: str) -> None:
        """``path/to/file.py:Name``: the user named the file, which is their consent to run it."""
        self._send("load_user", str(spec))

    def build(self, arch: str, options: dict | None = None) -> None:
        """A fresh zoo model shaped for the current dataset."""
        self._send("build", arch, dict(options or {}))

    def set_dataset(self, spec: str, *, limit: int | None = None, augment=None) -> None:
        self._send("dataset", spec, limit=limit, augment=augment)

    def start_training(self, config: TrainConfig, *, augment=None, paused: bool = False, steps: int = 0) -> None:
        """``augment`` (datasets.Augment) re-prepares the training data first if it changed."""
        if self._control is not None:
            self._control.stop()  # never leave a run without a way to stop it
        control = TrainingControl(start_paused=paused)
        if steps:
            control.step(steps)
        control.request_capture(self._last_request)
        self._control = control
        self._send("train", config, control, augment)

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

    def reset_weights(self, seed: int | None = None) -> None:
        """Fresh seeded weights; ``seed`` None: the last run's seed (0 before any run)."""
        self._send("reset", seed)

    def save(self, path: str) -> None:
        self._send("save", str(path))

    def save_safetensors(self, path: str) -> None:
        self._send("save_safetensors", str(path))

    def request_capture(self, request: CaptureRequest) -> None:
        """What to capture: the trainer uses it for its snapshots; when idle it is probed once."""
        self._last_request = request
        if self._control is not None:
            self._control.request_capture(request)
        with self._mailbox_lock:
            self._mailbox = request

    def snapshot_consumed(self) -> None:
        if self._control is not None:
            self._control.snapshot_consumed()

    def probe_consumed(self) -> None:
        with self._mailbox_lock:
            self._probe_in_flight = False

    # ==== the worker thread ========================================================
    def _loop(self) -> None:
        while not self._quit.is_set():
            try:
                cmd = self._commands.get(timeout=0.03)
            except queue.Empty:
                cmd = None
            if cmd is not None:
                self._guarded(self._dispatch, cmd)
            self._guarded(self._serve_probe)
        self._guarded(self._close_all)

    def _guarded(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            self.emit("failed", describe_error(exc, self._trainer_batch()))

    def _trainer_batch(self) -> int | None:
        return self._trainer.config.batch_size if self._trainer is not None else None

    def _dispatch(self, cmd: _Command) -> None:
        if cmd.name == "quit":
            self._quit.set()
            return
        getattr(self, "_do_" + cmd.name)(*cmd.args, **cmd.kwargs)

    # ---- probing ----------------------------------------------------------------
    def _take_mail(self) -> CaptureRequest | None:
        with self._mailbox_lock:
            if self._mailbox is None or self._probe_in_flight:
                return None
            request, self._mailbox = self._mailbox, None
            self._probe_in_flight = True
            return request

    def _serve_probe(self) -> None:
        if self._trainer is not None or self._bundle is None:
            return  # a running trainer answers requests through its snapshots
        request = self._take_mail()
        if request is None:
            return
        try:
            if not self._bundle.probeable:
                self.probe_consumed()
                return
            image01, label = probe_input(request, self._data, self._bundle.input_shape)
            snap = self._idle_inspector().probe(request, image01, label)
        except BaseException:
            self.probe_consumed()  # nothing in flight after a failed probe
            raise
        self.emit("probe_ready", snap)

    def _idle_inspector(self):
        if self._inspector is None:
            from visualizer.core.inspector import Inspector
            self._inspector = Inspector(self._bundle)
        return self._inspector

    def _close_inspector(self) -> None:
        if self._inspector is not None:
            self._inspector.close()
            self._inspector = None

    def _requeue_probe(self) -> None:
        """After the model or data changed, show the last request again on the new one."""
        with self._mailbox_lock:
            if self._mailbox is None:
                self._mailbox = self._last_request

    # ---- models and data ------------------------------------------------------------
    # Switching the model or the data set is atomic: the new model is introspected, its
    # Inspector built and the data prepared into locals; only when all of that worked is
    # the old state closed and replaced. A bad file or folder leaves everything as it was.
    def _do_sample(self) -> None:
        from visualizer.core import checkpoint
        bundle, fresh = None, False
        if SAMPLE_MODEL.exists():
            try:
                bundle = checkpoint.load_model(SAMPLE_MODEL)
            except LoadError as exc:
                self.emit("notice", f"The sample model could not be read ({exc}); using a fresh LeNet-5.")
        source = self._source_or_sample()
        if bundle is None:
            bundle, fresh = self._build_bundle("lenet5", {}, source), True
        self._install(bundle, fresh=fresh, trusted=False, source=source, origin=str(SAMPLE_MODEL))

    def _do_load(self, path: str, **kwargs) -> None:
        from visualizer.core import checkpoint
        from visualizer.core.checkpoint.safe_load import ArchitectureRequired
        try:
            bundle = checkpoint.load_model(path, **kwargs)
        except TrustRequired as exc:
            self.emit("trust_required", TrustRequest(path, getattr(exc, "info", None), str(exc),
                                                  tuple(sorted(kwargs.items()))))
            return
        except ArchitectureRequired as exc:
            if kwargs.get("arch") or kwargs.get("model_spec"):
                raise  # the user's answer did not fit these weights: say so, do not ask again
            self.emit("architecture_required", TrustRequest(path, None, str(exc), tuple(sorted(kwargs.items()))))
            return
        self._install(bundle, fresh=False, trusted=bool(kwargs.get("trust")), source=self._current_source(),
                      origin=path)

    def _do_bundle(self, bundle: ModelBundle) -> None:
        self._install(bundle, fresh=False, trusted=False, source=self._source_or_sample())

    def _do_load_user(self, spec: str) -> None:
        from visualizer.core.assemble import user_model_bundle
        from visualizer.core.checkpoint.user_model import split_model_spec
        path, _name = split_model_spec(spec)
        names = tuple(self._dataset.class_names) if self._dataset is not None else ()
        hint = tuple(self._dataset.native_shape) if self._dataset is not None else None
        try:
            bundle = user_model_bundle(spec, class_names=names, shape_hint=hint)
        except ModelError as exc:   # it loaded but cannot be fed an image: say which file
            raise LoadError(spec, f"cannot be used: {exc}", "nothing was changed; the model shown before is kept") \
                from exc
        # Fresh user model: it learns the data's normalisation like a zoo model would.
        self._install(bundle, fresh=True, trusted=False, source=self._current_source(), origin=str(path))

    def _do_build(self, arch: str, options: dict) -> None:
        source = self._source_or_sample()
        self._install(self._build_bundle(arch, options, source), fresh=True, trusted=False, source=source)

    def _do_dataset(self, spec: str, limit: int | None = None, augment=None) -> None:
        source = self._read_dataset(spec, limit, augment)
        bundle = self._bundle
        if bundle is None:
            self._commit_source(source, None)
            return
        c, k = int(source.dataset.native_shape[0]), len(source.dataset.class_names)
        if bundle.input_shape[0] == c and bundle.num_classes == k:
            data, info = self._prepared(bundle, source, fresh=self._fresh, origin=spec)
            self._commit_data(bundle, source, data, info)
            self._requeue_probe()
            return
        if bundle.arch and ":" not in bundle.arch:
            # A zoo model can be rebuilt for the new data; a user's model cannot.
            rebuilt = self._build_bundle(bundle.arch, dict(bundle.arch_options), source)
            self._install(rebuilt, fresh=True, trusted=False, source=source, origin=spec)
            self.emit("notice", f"{bundle.arch} was rebuilt for {k} classes and {c} channel(s): its weights are fresh.")
            return
        raise ModelError(f"The model expects {bundle.input_shape[0]} channel(s) and {bundle.num_classes} classes; "
                         f"{spec} has {c} channel(s) and {k} classes. Pick a matching dataset or a zoo architecture.")

    def _current_source(self) -> _DataSource | None:
        if self._dataset is None:
            return None
        return _DataSource(self._dataset, str(self._dataset_spec), self._limit, self._augment)

    def _source_or_sample(self) -> _DataSource:
        """The current data set, else the built-in one the app opens with."""
        return self._current_source() or self._read_dataset(SAMPLE_DATASET, self._sample_limit, None)

    def _read_dataset(self, spec: str, limit: int | None, augment) -> _DataSource:
        from visualizer.core.datasets import load_dataset
        try:
            dataset = load_dataset(spec, limit=limit)
        except LoadError:
            raise
        except Exception as exc:
            raise LoadError(spec, f"could not be read as a data set ({describe_error(exc)})",
                            "the data set shown before is kept") from exc
        return _DataSource(dataset, spec, limit, augment)

    def _commit_source(self, source: _DataSource | None, data) -> None:
        if source is None:
            self._dataset, self._dataset_spec, self._limit, self._augment = None, None, None, None
        else:
            self._dataset, self._dataset_spec, self._limit, self._augment = (
                source.dataset, source.spec, source.limit, source.augment)
        self._data = data

    def _commit_data(self, bundle: ModelBundle, source: _DataSource | None, data, info) -> None:
        """The prepared data becomes current; ``bundle`` takes the normalisation it was prepared with."""
        self._commit_source(source, data)
        if data is not None:
            bundle.mean, bundle.std = tuple(data.mean), tuple(data.std)
            self.emit("data_ready", info)

    def _build_bundle(self, arch: str, options: dict, source: _DataSource) -> ModelBundle:
        from visualizer.core.assemble import MODEL_OPTION_KEYS, new_model_bundle
        size = options.get("input_size")
        opts = {k: v for k, v in options.items() if k in MODEL_OPTION_KEYS}
        return new_model_bundle(arch, source.dataset, input_size=size, **opts)

    def _prepared(self, bundle: ModelBundle, source: _DataSource | None, *, fresh: bool, origin: str | None):
        """(PreparedData, DataInfo) for ``bundle`` from ``source``, touching no worker state; (None, None)
        without a data set. Failures name ``origin`` (the file or folder the user asked for)."""
        from visualizer.core.assemble import data_for
        if source is None:
            return None, None
        try:
            # data_for writes the normalisation into the bundle it is given: give it a copy, so that
            # the live bundle changes only on commit. A fresh model learns the data's own
            # normalisation; a trained one keeps the one it was trained with.
            data = data_for(copy.copy(bundle), source.dataset, augment=source.augment, reuse_normalisation=not fresh)
            return data, self._data_info(data, source)
        except LoadError:
            raise
        except Exception as exc:
            raise LoadError(origin, f"does not fit the data set {source.spec}: {describe_error(exc)}",
                            "nothing was changed; the model and data shown before are kept") from exc

    def _data_info(self, data, source: _DataSource) -> DataInfo:
        name = data.probe_split
        # Labels straight from the split: indexing it would normalise (and augment) every image.
        labels = np.asarray(data.labels(name), dtype=np.int64)
        n = len(labels)
        c, h, w = data.input_shape
        g = min(n, GALLERY_MAX, max(1, GALLERY_BYTES // max(1, c * h * w)))
        images = np.zeros((g, c, h, w), np.uint8)
        for i in range(g):
            img, _lab = data.sample(i, split=name)
            images[i] = np.clip(np.asarray(img) * 255 + 0.5, 0, 255).astype(np.uint8)
        return DataInfo(name=source.dataset.name, spec=str(source.spec), class_names=tuple(data.class_names),
                        input_shape=tuple(data.input_shape), n_train=len(data.train), n_val=n,
                        labels=frozen_array(labels, np.int64), gallery=frozen_array(images, np.uint8),
                        augment=tuple(vars(source.augment).items()) if source.augment is not None else (),
                        native_shape=tuple(int(v) for v in source.dataset.native_shape))

    def _install(self, bundle: ModelBundle, *, fresh: bool, trusted: bool, source: _DataSource | None,
                 origin: str | None = None) -> None:
        """Make ``bundle`` (and ``source``'s data) current only once everything about it is known to work."""
        from visualizer.core.inspector import Inspector
        from visualizer.core.introspect import introspect
        origin = origin or bundle.source or bundle.arch
        inspector = None
        try:
            info = introspect(bundle.model, bundle.input_shape)
            data, data_info = self._prepared(bundle, source, fresh=fresh, origin=origin)
            inspector = Inspector(bundle) if bundle.probeable else None
        except Exception as exc:
            if inspector is not None:
                inspector.close()
            if isinstance(exc, LoadError):
                raise
            raise LoadError(origin, f"could not be opened ({describe_error(exc)})",
                            "nothing was changed; the model shown before is kept") from exc
        # Everything worked: only now does the old model go.
        self._close_trainer()
        self._close_inspector()
        self._bundle, self._fresh, self._trusted, self._inspector = bundle, fresh, trusted, inspector
        self._commit_data(bundle, source, data, data_info)
        self.emit("model_loaded", LoadedModel(
            info=info, input_shape=tuple(bundle.input_shape), class_names=tuple(bundle.class_names),
            arch=bundle.arch, arch_options=tuple(sorted(bundle.arch_options.items())), source=bundle.source,
            meta=tuple(sorted((k, v) for k, v in bundle.meta.items() if isinstance(v, (str, int, float, bool)))),
            warnings=tuple(bundle.warnings), probeable=bundle.probeable, trusted=trusted,
            dataset=self._dataset_spec, dataset_size=self._data_size()))
        for w in bundle.warnings:
            self.emit("notice", w)
        self._requeue_probe()

    def _data_size(self) -> int:
        if self._data is None:
            return 0
        return len(self._data.split(self._data.probe_split))

    # ---- training -----------------------------------------------------------------
    def _do_train(self, config: TrainConfig, control: TrainingControl, augment=None) -> None:
        """Every run ends with exactly one Finished or Diverged, a failed one too (reason
        "failed", after the ``failed`` message; or OUT_OF_MEMORY with the batch size, and no
        message: the window offers a smaller batch): that, not ``failed``, returns the GUI to
        Stopped, so a failed save or probe during a run does not."""
        if control.stopping:
            # Stopped (or replaced) before it began: still say so, or the GUI waits forever.
            if self._control is control:
                self._control = None
            self.emit("finished", Finished(0, 0, "stopped"))
            return
        self._seed = config.seed
        deferred: list[_Command] = []
        ended = False
        reason = "failed"
        try:
            ended = self._run_training(config, control, augment, deferred)
        except Exception as exc:  # noqa: BLE001 - the run is over; the worker goes on
            if is_out_of_memory(exc):
                reason = OUT_OF_MEMORY   # the window offers a smaller batch: no separate failure message
            else:
                self.emit("failed", describe_error(exc, config.batch_size))
        finally:
            if self._control is control:
                self._control = None
            self._close_side()
            step, epoch = (self._trainer.step, self._trainer.epoch) if self._trainer is not None else (0, 0)
            self._guarded(self._close_trainer)
        if not ended:
            self.emit("finished", Finished(step, epoch, reason,
                                           batch_size=config.batch_size if reason == OUT_OF_MEMORY else 0))
        for cmd in deferred:
            self._guarded(self._dispatch, cmd)
        self._requeue_probe()

    def _run_training(self, config: TrainConfig, control: TrainingControl, augment,
                      deferred: list[_Command]) -> bool:
        """Train until the run ends; True when the trainer said its last word (Finished/Diverged)."""
        if self._bundle is None or self._data is None:
            raise ModelError("Open a model and a dataset before training.")
        if not self._bundle.probeable:
            raise ModelError("This model cannot be trained here (TorchScript has no hooks or optimizer state).")
        if self._bundle.num_classes != len(self._data.class_names):
            raise ModelError(f"The model has {self._bundle.num_classes} outputs but the dataset has "
                             f"{len(self._data.class_names)} classes.")
        if augment is not None and augment != self._augment and self._dataset is not None:
            source = replace(self._current_source(), augment=augment)
            data, info = self._prepared(self._bundle, source, fresh=self._fresh, origin=source.spec)
            self._commit_data(self._bundle, source, data, info)
        self._fresh = False  # trained from here on: its normalisation is now part of it
        self._close_inspector()  # the Trainer's own Inspector owns the hooks now
        side = None
        n_params = sum(p.numel() for p in self._bundle.model.parameters())
        if n_params >= SIDE_PROBE_MIN_PARAMS or self.side_probe_always:
            try:
                side = _SideProbe(self, self._bundle, self._data)  # copied before the Trainer adds hooks
            except Exception as exc:  # noqa: BLE001 - e.g. a model holding a lock cannot be copied
                self.emit("notice", f"Views update only between training steps ({type(exc).__name__}: {exc}).")
                side = None
        self._side = side
        on_step = (lambda *_: side.after_step(self._bundle.model)) if side is not None else None
        self._trainer = Trainer(self._bundle, self._data, config, control, on_step=on_step)
        for n in self._trainer.notices:
            self.emit("notice", n)
        self.emit("started_training", None)
        for event in self._trainer.run():
            self._emit_event(event)
            if isinstance(event, (Finished, Diverged)):
                return True
            deferred += self._drain_during_training(control)
            if self._quit.is_set():
                control.stop()
        return False

    def _emit_event(self, event) -> None:
        if isinstance(event, TrainingSnapshot):
            if event.probe is not None:
                with self._mailbox_lock:  # answered: the side probe need not do it again
                    if self._mailbox is not None and self._mailbox.request_id <= event.probe.request_id:
                        self._mailbox = None
            self.emit("training_snapshot", event)
        elif isinstance(event, EpochEnd):
            self.emit("epoch_end", event)
        elif isinstance(event, Diverged):
            self.emit("diverged", event)
        elif isinstance(event, Finished):
            self.emit("finished", event)
        # Paused: nothing to tell; it only gives us a chance to read commands.

    def _drain_during_training(self, control: TrainingControl) -> list[_Command]:
        """Handle commands that fit between two steps; keep the rest for after training."""
        deferred = []
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return deferred
            if cmd.name == "quit":
                self._quit.set()
                control.stop()
            elif cmd.name == "save":
                self._guarded(self._do_save, *cmd.args)
            elif cmd.name == "save_safetensors":
                self._guarded(self._do_save_safetensors, *cmd.args)
            elif cmd.name == "reset":
                self._trainer.reset_weights()  # seeded by the running config's seed
            else:
                # A new model/data/training replaces this run (the GUI already called stop()).
                control.stop()
                deferred.append(cmd)

    def _close_side(self) -> None:
        side, self._side = getattr(self, "_side", None), None
        if side is not None:
            side.close()

    def _close_trainer(self) -> None:
        if self._trainer is not None:
            try:
                self._trainer.close()
            finally:
                self._trainer = None

    def _do_reset(self, seed: int | None = None) -> None:
        if self._bundle is None:
            return
        # The same seeded re-initialisation as Trainer.reset_weights: the same seed, the same weights.
        reinitialise(self._bundle.model, self._seed if seed is None else int(seed))
        self._requeue_probe()
        self.emit("notice", "Weights reset to fresh random values.")

    def _do_save(self, path: str) -> None:
        from visualizer.core import checkpoint
        if self._bundle is None:
            raise ModelError("There is no model to save.")
        state = self._trainer.state_dict() if self._trainer is not None else None
        bundle = replace(self._bundle, meta=dict(self._bundle.meta, dataset=self._dataset_spec))
        checkpoint.save_checkpoint(path, bundle, training_state=state)
        self.emit("saved", path)

    def _do_save_safetensors(self, path: str) -> None:
        from visualizer.core import checkpoint
        if self._bundle is None:
            raise ModelError("There is no model to save.")
        checkpoint.save_safetensors(path, self._bundle)
        self.emit("saved", path)

    def _close_all(self) -> None:
        self._close_trainer()
        self._close_inspector()
        self._bundle = None


# Methods of WorkerCore the GUI may call; in process mode they travel as messages.
_CALLS = ("load_sample", "load_file", "load_bundle", "load_user_model", "build", "set_dataset",
          "start_training", "pause", "resume", "step", "stop", "set_lr", "set_speed", "reset_weights", "save",
          "save_safetensors", "request_capture", "snapshot_consumed", "probe_consumed",
          "set_side_probe_always")
_SIGNALS = ("probe_ready", "training_snapshot", "epoch_end", "finished", "diverged", "failed", "model_loaded",
            "data_ready", "trust_required", "architecture_required", "notice", "saved", "started_training",
            "crashed")


class Worker(QObject):
    """The GUI thread's handle on the worker. Every method returns at once.

    ``process=False`` (tests, scripts): the core runs in a QThread of this process.
    ``process=True`` (the app): it runs in a child process, so the training loop
    never competes with the GUI thread for Python's GIL (pyqtgraph paints in
    Python: with a thread, training ran at 50-75% of its headless speed while the
    window drew); messages and snapshots are pickled across.
    """

    probe_ready = pyqtSignal(object)         # ProbeSnapshot (on-demand probe)
    training_snapshot = pyqtSignal(object)   # TrainingSnapshot
    epoch_end = pyqtSignal(object)           # EpochEnd
    finished = pyqtSignal(object)            # Finished
    diverged = pyqtSignal(object)            # Diverged
    failed = pyqtSignal(str)                 # readable message (a run that failed also ends with Finished)
    model_loaded = pyqtSignal(object)        # LoadedModel
    data_ready = pyqtSignal(object)          # DataInfo
    trust_required = pyqtSignal(object)      # TrustRequest: ask, then retry with trust=<sha256>
    architecture_required = pyqtSignal(object)  # TrustRequest: bare weights; retry with arch=/model_spec=
    notice = pyqtSignal(str)                 # informational (CUDA fallback, rebuilt model...)
    saved = pyqtSignal(str)                  # path written
    started_training = pyqtSignal()          # a Trainer exists and runs (or waits for a step)
    crashed = pyqtSignal(str)                # the worker itself died (after ``failed``): call restart()

    def __init__(self, parent: QObject | None = None, *, sample_limit: int | None = None, process: bool = False):
        super().__init__(parent)
        self.process = process
        self.sample_limit = sample_limit
        self._stopped = False
        self._dead = False               # crashed: commands are dropped until restart()
        self.core = None
        self._make()

    def _make(self) -> None:
        if self.process:
            ctx = multiprocessing.get_context("spawn")  # fork would copy Qt's and torch's threads' state
            self._to_child = ctx.Queue()
            self._from_child = ctx.Queue()
            self._proc = ctx.Process(target=child_main, args=(self._to_child, self._from_child, self.sample_limit),
                                     name="cnn-visualizer-worker", daemon=True)
            self._relay = _Relay(self._from_child, self._emit, self._proc, self._on_crash)
        else:
            self.core = WorkerCore(self._emit, sample_limit=self.sample_limit)
            self._thread = _Thread(self.core, self._on_crash)

    def _on_crash(self, text: str) -> None:
        """The relay or the thread, as it ends: the worker is gone; say so once."""
        self._dead = True
        self._emit("failed", text)
        self._emit("crashed", text)

    def restart(self) -> None:
        """A fresh worker after a crash (no model, no data: the caller reopens them)."""
        if self._stopped:
            return
        if self.process:
            self._relay.stop()
            self._relay.wait()
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc.join(5)
            self._to_child.cancel_join_thread()
        else:
            self.core.request_quit()
            self._thread.wait()
        self._make()
        self._dead = False
        self.start()

    def _emit(self, name: str, payload) -> None:
        signal = getattr(self, name)
        if name == "started_training":
            signal.emit()
        else:
            signal.emit(payload)

    def __getattr__(self, name):
        # Delegate the command methods; everything else is a normal attribute error.
        if name in _CALLS:
            return lambda *a, **k: self._call(name, *a, **k)
        raise AttributeError(name)

    def _call(self, name: str, *args, **kwargs) -> None:
        if self._stopped or self._dead:
            return  # nobody would read it
        if self.core is not None:
            getattr(self.core, name)(*args, **kwargs)
        else:
            self._to_child.put((name, args, kwargs))

    # ---- test conveniences (thread mode) ----------------------------------------------
    @property
    def side_probe_always(self) -> bool:
        return bool(self.core and self.core.side_probe_always)

    @side_probe_always.setter
    def side_probe_always(self, on: bool) -> None:
        self._call("set_side_probe_always", on)

    @property
    def _bundle(self):
        return self.core._bundle if self.core is not None else None

    # ---- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        if self.core is not None:
            self._thread.start()
        else:
            self._proc.start()
            self._relay.start()

    def is_running(self) -> bool:
        if self.core is not None:
            return self._thread.isRunning()
        return self._proc.is_alive() or self._relay.isRunning()

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Stop training, end the worker and wait for it. Safe to call twice."""
        if self.core is not None:
            self.core.request_quit()
            if not self._thread.isRunning():
                return True
            if self._thread.wait(timeout_ms):
                return True
            # A step can take long (a big model on a CPU): keep waiting rather than let Qt
            # destroy a running QThread, which aborts the whole process.
            log.warning("the training step is still running; waiting for it to end before exiting")
            return self._thread.wait()
        if not self._stopped:
            self._stopped = True
            self._relay.expect_exit()
            if self._proc.is_alive():
                self._to_child.put(("__quit__", (), {}))
                self._proc.join(timeout_ms / 1000)
            if self._proc.is_alive():  # a child can be ended without harm to the GUI
                log.warning("the worker process did not stop in time; terminating it")
                self._proc.terminate()
                self._proc.join(5)
            self._relay.stop()
            self._relay.wait()
            self._to_child.cancel_join_thread()
        return not self.is_running()


class _Relay(QThread):
    """Parent side of process mode: child messages become Qt signals (queued to the GUI).

    It also watches the child: one that ends without being asked to (killed, out of
    memory, a crash in native code) is reported through ``on_crash`` instead of leaving
    the GUI sending commands to a queue nobody reads.
    """

    def __init__(self, source, emit, proc, on_crash):
        super().__init__()
        self._source = source
        self._emit = emit
        self._proc = proc
        self._on_crash = on_crash
        self._stop = threading.Event()
        self._exit_expected = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def expect_exit(self) -> None:
        self._exit_expected.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                name, payload = self._source.get(timeout=0.1)
            except queue.Empty:
                if self._child_died():
                    break
                continue
            except (EOFError, OSError):
                self._child_died()
                break
            self._deliver(name, payload)

    def _deliver(self, name, payload) -> None:
        try:
            self._emit(name, refreeze(payload))
        except Exception:
            log.exception("could not deliver %s from the worker", name)

    def _child_died(self) -> bool:
        code = self._proc.exitcode
        if code is None or self._exit_expected.is_set() or self._stop.is_set():
            return False
        while True:  # what it said before it died comes first
            try:
                self._deliver(*self._source.get(timeout=0.05))
            except (queue.Empty, EOFError, OSError, ValueError, TypeError):
                break
        how = f"exit code {code}" + (f", killed by signal {-code}" if code < 0 else "")
        self._on_crash(f"The training process stopped unexpectedly ({how}); it has to be restarted "
                       "and unsaved training progress is lost.")
        return True


def child_main(inbox, outbox, sample_limit) -> None:
    """The worker process: a listener thread applies the GUI's calls, the main thread works."""
    core = WorkerCore(lambda name, payload: outbox.put((name, payload)), sample_limit=sample_limit)

    def listen() -> None:
        while True:
            name, args, kwargs = inbox.get()
            if name == "__quit__":
                core.request_quit()
                return
            try:
                getattr(core, name)(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a bad call is reported, not fatal
                outbox.put(("failed", describe_error(exc)))

    def watch_parent() -> None:
        # A GUI that was killed (SIGKILL, a crash) never sends __quit__, and a daemon child is
        # only stopped by a parent that exits normally: the worker trained on, orphaned, at
        # full speed. When the parent is gone, stop; if stopping hangs, go anyway.
        parent = multiprocessing.parent_process()
        if parent is None:
            return
        parent.join()
        core.request_quit()
        time.sleep(ORPHAN_GRACE_S)
        os._exit(0)

    threading.Thread(target=listen, name="worker-listener", daemon=True).start()
    threading.Thread(target=watch_parent, name="worker-parent-watch", daemon=True).start()
    try:
        core._loop()
    except BaseException:  # noqa: BLE001 - the child's last word: the GUI must hear why it ended
        outbox.put(("failed", "The worker process crashed:\n" + traceback.format_exc(limit=5)))
    outbox.close()
    outbox.join_thread()


def refreeze(obj, _depth: int = 0):
    """Arrays come out of pickling writeable: make them read-only again, as the schema says."""
    if _depth > 6:
        return obj
    if isinstance(obj, np.ndarray):
        obj.setflags(write=False)
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            refreeze(item, _depth + 1)
    elif hasattr(obj, "__dataclass_fields__"):
        for name in obj.__dataclass_fields__:
            refreeze(getattr(obj, name, None), _depth + 1)
    return obj


def is_out_of_memory(exc: BaseException) -> bool:
    """Python's MemoryError, torch's OutOfMemoryError, or a backend's "out of memory" RuntimeError."""
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "out of memory" in str(exc).lower())


def describe_error(exc: BaseException, batch_size: int | None = None) -> str:
    """One readable message for the user; out-of-memory gets a concrete way out."""
    text = str(exc) or type(exc).__name__
    if is_out_of_memory(exc):
        smaller = f" (for example {max(1, batch_size // 2)})" if batch_size else ""
        now = f" at batch size {batch_size}" if batch_size else ""
        return f"Out of memory{now}. Try a smaller batch size{smaller} or a smaller model."
    if isinstance(exc, (LoadError, ModelError, ValueError)):
        return text
    return f"{type(exc).__name__}: {text}"
