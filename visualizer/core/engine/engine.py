"""The engine: the one owner of a model, its data, its trainer and its inspector (no Qt).

The app's worker (a thread or a child process), the command line's ``train`` and scripts
all drive this class, so the same settings give the same model, the same split and the
same run whichever way they are given. Every method runs in the caller's thread and
reports through ``emit(event_name, payload)``; payloads are plain data (``messages.py``,
``snapshot.py``). The threading around it (a command queue, a capture mailbox) is
``service.py``'s.

Switching the model or the data set is atomic: the new model is introspected, its
Inspector built and the data prepared into locals; only when all of that worked is the
old state closed and replaced. A bad file or folder leaves everything as it was.

Runs are kept when the engine is made with ``keep_runs`` (the app's): each run it trains is
recorded to a ``.cnnviz`` run file and autosaved (``run_keeper.py``), and an autosaved run
can be continued exactly where it was (``load_resumable``, what ``train --resume`` does).

Seeds: one ``seed`` per set-up call initialises a zoo model's weights and picks the data
set's subset and train/validation split; ``TrainConfig.seed`` orders the batches and
draws the augmentation. The window passes its Seed field to both, ``train`` its --seed.
"""
from __future__ import annotations

import copy
import logging
import os
from dataclasses import asdict, replace
from typing import Any, Callable

from ..config import Augment, TrainConfig
from ..errors import LoadError, ModelError, TrustRequired
from ..model_bundle import ModelBundle
from ..resources import SAMPLE_DATASET, sample_model_path
from ..snapshot import OUT_OF_MEMORY, CaptureRequest, Diverged, EpochEnd, Finished, TrainingSnapshot
from .data_source import VAL_FRACTION, DataSource, data_info
from .inspect_only import close_bundle, is_inspect_only, make_inspector, model_info, open_onnx, training_refusal
from .messages import (
    ArchitectureRequest,
    InputFormat,
    LoadedModel,
    RunStarted,
    TrustRequest,
    describe_error,
    exit_problem,
    is_out_of_memory,
)
from .side_probe import SIDE_PROBE_MIN_PARAMS, SideProbe

log = logging.getLogger(__name__)

Emit = Callable[[str, Any], None]


class Engine:
    """See the module docstring. Not thread-safe: one thread drives it (``service.EngineService``)."""

    def __init__(self, emit: Emit, *, sample_limit: int | None = None, keep_runs: bool = False,
                 on_progress: Callable[[], None] | None = None):
        """``keep_runs``: record and autosave every run in the per-user data folder (the app);
        ``on_progress``: called at every sign of progress in a run (the heartbeat's ticks)."""
        self.emit = emit
        self._sample_limit = sample_limit  # fewer samples of the sample dataset (tests, benches)
        self.keep_runs = keep_runs
        self._on_progress = on_progress
        self.interrupted = False         # the viewer died: a run stopping now was interrupted, not stopped
        self._info = None                # ModelInfo of the open model (the run file's meta)
        self._run_id: str | None = None  # the autosaved run the open model continues (load_resumable)
        self.bundle: ModelBundle | None = None
        self._fresh = False              # built here, not loaded: normalisation follows the data
        self._trusted = False
        self._source: DataSource | None = None
        self.data = None                 # PreparedData
        self._inspector = None           # idle Inspector (closed while a Trainer owns the hooks)
        self.trainer = None              # Trainer while a run is going
        self._seed = 0                   # the last run's TrainConfig.seed: what an idle reset uses
        self._last_run: dict | None = None  # the finished run's resumable state and figures, until the model changes
        self.side_probe_always = False   # tests: use the side probe for small models too
        self.side: SideProbe | None = None
        # The viewer's wishes for looking during a run (engine/live.py), read at every training event.
        self.live_health = True                  # the health monitor follows training
        self.live_patches_layer: str | None = None   # conv layer whose top patches follow training
        self.live = None                         # LiveLooking of the run going on

    # ==== models and data ==========================================================
    def load_sample(self) -> None:
        from ..checkpoint import load_model
        bundle, fresh = None, False
        path = sample_model_path()
        if path is not None:
            try:
                bundle = load_model(path)
            except LoadError as exc:
                self.emit("notice", f"The sample model could not be read ({exc}); using a fresh LeNet-5.")
        source = self._source_or_sample()
        if bundle is None:
            bundle, fresh = self._build_bundle("lenet5", {}, source, seed=0), True
        self._install(bundle, fresh=fresh, trusted=False, source=source, origin=str(path))

    def load_file(self, path: str, **kwargs) -> None:
        """kwargs go to checkpoint.load_model (arch, arch_options, model_spec, trust)."""
        from ..checkpoint import load_model
        from ..checkpoint.safe_load import ArchitectureRequired
        from ..onnx import is_onnx_path
        path = str(path)
        if is_onnx_path(path):   # another framework's model, for inspection only (inspect_only.py)
            bundle = open_onnx(path)
            try:
                self._install(bundle, fresh=False, trusted=False, source=self._source, origin=path)
            except BaseException:
                close_bundle(bundle)
                raise
            return
        try:
            bundle = load_model(path, **kwargs)
        except TrustRequired as exc:
            self.emit("trust_required", TrustRequest(path, getattr(exc, "info", None), str(exc),
                                                     tuple(sorted(kwargs.items()))))
            return
        except ArchitectureRequired as exc:
            if kwargs.get("arch") or kwargs.get("model_spec"):
                raise  # the user's answer did not fit these weights: say so, do not ask again
            self.emit("architecture_required", ArchitectureRequest(path, str(exc), tuple(sorted(kwargs.items()))))
            return
        self._install(bundle, fresh=False, trusted=bool(kwargs.get("trust")), source=self._source, origin=path)

    def load_bundle(self, bundle: ModelBundle) -> None:
        """A ModelBundle built elsewhere (scripts, tests); the caller must not touch it again."""
        self._install(bundle, fresh=False, trusted=False, source=self._source_or_sample())

    def load_user_model(self, spec: str, *, input_shape: tuple[int, int, int] | None = None,
                        seed: int | None = None) -> None:
        """``path/to/file.py:Name``: the user named the file, which is their consent to run it.

        ``input_shape``: (C, H, W) instead of the first size that runs; ``seed``: seeds the
        class's own initialisation, as ``build`` seeds a zoo model's (None: torch's current state).
        """
        from ..assemble import user_model_bundle
        from ..checkpoint.user_model import split_model_spec
        spec = str(spec)
        path, _name = split_model_spec(spec)
        ds = self._source.dataset if self._source is not None else None
        names = tuple(ds.class_names) if ds is not None else ()
        hint = tuple(ds.native_shape) if ds is not None else None
        if seed is not None:
            import torch
            torch.manual_seed(int(seed))
        try:
            bundle = user_model_bundle(spec, input_shape=input_shape, class_names=names, shape_hint=hint)
        except ModelError as exc:   # it loaded but cannot be fed an image: say which file
            raise LoadError(spec, f"cannot be used: {exc}", "nothing was changed; the model shown before is kept") \
                from exc
        except SystemExit as exc:   # in its forward (shape probing): an error, not the end of the engine
            raise LoadError(path, exit_problem(exc, str(path)),
                            "a model must raise an exception instead; the model shown before is kept") from exc
        # Fresh user model: it learns the data's normalisation like a zoo model would.
        self._install(bundle, fresh=True, trusted=False, source=self._source, origin=str(path))

    def build(self, arch: str, options: dict | None = None, *, seed: int = 0) -> None:
        """A fresh zoo model shaped for the current dataset, its weights seeded by ``seed``."""
        source = self._source_or_sample()
        self._install(self._build_bundle(arch, dict(options or {}), source, seed=seed), fresh=True,
                      trusted=False, source=source)

    def set_dataset(self, spec: str, *, limit: int | None = None, augment: Augment | None = None,
                    seed: int = 0, val_fraction: float = VAL_FRACTION) -> None:
        source = self._read_dataset(spec, limit, augment, seed, val_fraction)
        bundle = self.bundle
        if bundle is None:
            self._commit_source(source, None)
            return
        c, k = int(source.dataset.native_shape[0]), len(source.dataset.class_names)
        if bundle.input_shape[0] == c and bundle.num_classes == k:
            data, info = self._prepared(bundle, source, fresh=self._fresh, origin=spec)
            self._commit_data(bundle, source, data, info)
            self.emit("requeue_probe", None)
            return
        if bundle.arch and ":" not in bundle.arch and not is_inspect_only(bundle):
            # A zoo model can be rebuilt for the new data; a user's model (or an ONNX file) cannot.
            rebuilt = self._build_bundle(bundle.arch, dict(bundle.arch_options), source, seed=seed)
            self._install(rebuilt, fresh=True, trusted=False, source=source, origin=spec)
            self.emit("notice", f"{bundle.arch} was rebuilt for {k} classes and {c} channel(s): its weights are fresh.")
            return
        raise ModelError(f"The model expects {bundle.input_shape[0]} channel(s) and {bundle.num_classes} classes; "
                         f"{spec} has {c} channel(s) and {k} classes. Pick a matching dataset or a zoo architecture.")

    @property
    def dataset_spec(self) -> str | None:
        return self._source.spec if self._source is not None else None

    def _source_or_sample(self) -> DataSource:
        """The current data set, else the built-in one the app opens with."""
        return self._source or self._read_dataset(SAMPLE_DATASET, self._sample_limit, None, 0, VAL_FRACTION)

    def _read_dataset(self, spec: str, limit: int | None, augment, seed: int, val_fraction: float) -> DataSource:
        from ..datasets import load_dataset
        try:
            dataset = load_dataset(spec, seed=seed, limit=limit)
        except LoadError:
            raise
        except Exception as exc:  # any reader failure is this folder's problem
            raise LoadError(spec, f"could not be read as a data set ({describe_error(exc)})",
                            "the data set shown before is kept") from exc
        if dataset.skipped:
            self.emit("notice", f"skipped {len(dataset.skipped)} unreadable item(s) of {spec}, "
                                f"e.g. {dataset.skipped[0]}")
        return DataSource(dataset, str(spec), limit, augment, int(seed), float(val_fraction))

    def _commit_source(self, source: DataSource | None, data) -> None:
        self._source = source
        self.data = data

    def _commit_data(self, bundle: ModelBundle, source: DataSource | None, data, info) -> None:
        """The prepared data becomes current; ``bundle`` takes the normalisation it was prepared with."""
        self._commit_source(source, data)
        if data is not None:
            bundle.mean, bundle.std = tuple(data.mean), tuple(data.std)
            self.emit("data_ready", info)

    def _build_bundle(self, arch: str, options: dict, source: DataSource, *, seed: int) -> ModelBundle:
        from ..architectures.catalog import MODEL_OPTION_KEYS
        from ..assemble import new_model_bundle
        size = options.get("input_size")
        opts = {k: v for k, v in options.items() if k in MODEL_OPTION_KEYS}
        return new_model_bundle(arch, source.dataset, input_size=size, seed=seed, **opts)

    def _prepared(self, bundle: ModelBundle, source: DataSource | None, *, fresh: bool, origin: str | None):
        """(PreparedData, DataInfo) for ``bundle`` from ``source``, touching no engine state; (None, None)
        without a data set. Failures name ``origin`` (the file or folder the user asked for)."""
        from ..assemble import data_for
        if source is None:
            return None, None
        try:
            # data_for writes the normalisation into the bundle it is given: give it a copy, so that
            # the live bundle changes only on commit. A fresh model learns the data's own
            # normalisation; a trained one keeps the one it was trained with.
            data = data_for(copy.copy(bundle), source.dataset, augment=source.augment, seed=source.seed,
                            val_fraction=source.val_fraction, reuse_normalisation=not fresh)
            return data, data_info(data, source)
        except LoadError:
            raise
        except Exception as exc:  # reported naming the file; nothing was replaced
            raise LoadError(origin, f"does not fit the data set {source.spec}: {describe_error(exc)}",
                            "nothing was changed; the model and data shown before are kept") from exc

    def _install(self, bundle: ModelBundle, *, fresh: bool, trusted: bool, source: DataSource | None,
                 origin: str | None = None) -> None:
        """Make ``bundle`` (and ``source``'s data) current only once everything about it is known to work."""
        origin = origin or bundle.source or bundle.arch
        inspector = None
        try:
            info = model_info(bundle)
            data, info_data = self._prepared(bundle, source, fresh=fresh, origin=origin)
            inspector = make_inspector(bundle, info)
        except (Exception, SystemExit) as exc:   # SystemExit: a model's forward called sys.exit()
            if inspector is not None:
                inspector.close()
            if isinstance(exc, LoadError):
                raise
            raise LoadError(origin, f"could not be opened ({describe_error(exc, model_file=bundle.source)})",
                            "nothing was changed; the model shown before is kept") from exc
        # Everything worked: only now does the old model go.
        self._close_trainer()
        self._close_inspector()
        self._last_run = None
        self._info, self._run_id = info, None
        self.bundle, self._fresh, self._trusted, self._inspector = bundle, fresh, trusted, inspector
        self._commit_data(bundle, source, data, info_data)
        self.emit("model_loaded", LoadedModel(
            info=info, input_shape=tuple(bundle.input_shape), class_names=tuple(bundle.class_names),
            arch=bundle.arch, arch_options=tuple(sorted(bundle.arch_options.items())), source=bundle.source,
            meta=tuple(sorted((k, v) for k, v in bundle.meta.items() if isinstance(v, (str, int, float, bool)))),
            warnings=tuple(bundle.warnings), probeable=bundle.probeable, trusted=trusted,
            dataset=self.dataset_spec, dataset_size=self._data_size(), training_refusal=training_refusal(bundle),
            mean=tuple(bundle.mean), std=tuple(bundle.std)))
        for w in bundle.warnings:
            self.emit("notice", w)
        self.emit("requeue_probe", None)

    def set_input_format(self, mean, std, class_names=()) -> None:
        """The normalisation (and class names) the open model was trained with, where its file does
        not say (core/input_format.py): its probes, its data and what it is saved with follow."""
        from ..input_format import checked_input_format
        b = self.bundle
        if b is None:
            raise ModelError("Open a model first.")
        if self.trainer is not None:
            raise ModelError("Stop training first: a run keeps the normalisation it started with.")
        try:
            mean, std, names = checked_input_format(b.input_shape[0], b.num_classes, mean, std, class_names)
        except ValueError as exc:
            raise ModelError(f"The model input was not changed: {exc}.") from None
        old = (b.mean, b.std, b.class_names)
        b.mean, b.std, b.class_names = mean, std, names or b.class_names
        try:
            data, info = self._prepared(b, self._source, fresh=False, origin=b.source or b.arch)
        except BaseException:
            b.mean, b.std, b.class_names = old
            raise
        self._fresh = False     # the user's normalisation now, not the data's
        self._commit_data(b, self._source, data, info)
        self.emit("input_format", InputFormat(tuple(b.mean), tuple(b.std), tuple(b.class_names)))
        self.emit("requeue_probe", None)

    @property
    def model_file(self) -> str | None:
        """The file the open model came from (a checkpoint, the user's .py), None for a fresh zoo model."""
        return self.bundle.source if self.bundle is not None else None

    @property
    def model_name(self) -> str:
        b = self.bundle
        if b is None:
            return "no model"
        return b.arch or (os.path.basename(b.source) if b.source else "the model")

    def _data_size(self) -> int:
        if self.data is None:
            return 0
        return len(self.data.split(self.data.probe_split))

    # ==== looking =================================================================
    def probe(self, request: CaptureRequest):
        """One probe pass for ``request`` when no run is going; None if there is nothing to probe."""
        from ..training import probe_input
        if self.bundle is None or not self.bundle.probeable:
            return None
        image01, label = probe_input(request, self.data, self.bundle.input_shape)
        return self._idle_inspector().probe(request, image01, label)

    def idle_inspector(self):
        """The Inspector of the open model when no run owns the hooks."""
        return self._idle_inspector()

    def _idle_inspector(self):
        if self._inspector is None:
            self._inspector = make_inspector(self.bundle)
        return self._inspector

    def _close_inspector(self) -> None:
        if self._inspector is not None:
            self._inspector.close()
            self._inspector = None

    # ==== training =================================================================
    def train(self, config: TrainConfig, control, augment: Augment | None = None, *,
              between_events: Callable[[], None] | None = None,
              on_step: Callable[[int, float, float], None] | None = None,
              resume_state: dict | None = None, side_probe: Callable | None = None,
              run_path: str | None = None) -> None:
        """Run one training to its end, emitting its snapshots and epochs.

        Every run ends with exactly one Finished or Diverged, a failed one too (reason
        "failed", after the ``failed`` message; or OUT_OF_MEMORY with the batch size, and no
        message: the window offers a smaller batch). ``between_events`` is called after each
        event (the service handles commands there); ``on_step`` after each step (progress bars);
        ``side_probe(bundle, data, control)`` makes the SideProbe that answers views during slow steps.
        ``run_path``: record the run to this run file (with ``keep_runs`` it is recorded anyway,
        into the data folder's runs/, and autosaved); ``run_started`` tells where.
        """
        if control.stopping:
            # Stopped (or replaced) before it began: still say so, or the viewer waits forever.
            self.emit("finished", Finished(0, 0, "stopped"))
            return
        self._seed = config.seed
        last = None
        reason = "failed"
        try:
            last = self._run(config, control, augment, between_events, on_step, resume_state, side_probe, run_path)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the run is over; the engine goes on
            if is_out_of_memory(exc):
                reason = OUT_OF_MEMORY   # the window offers a smaller batch: no separate failure message
            else:   # SystemExit: the model's forward called sys.exit(); it must not end the engine
                self.emit("failed", describe_error(exc, config.batch_size, self.model_file))
        finally:
            self._close_side()
            self._close_live()
            step, epoch = (self.trainer.step, self.trainer.epoch) if self.trainer is not None else (0, 0)
            if self.trainer is not None and self.trainer.step > 0:
                self._last_run = self._run_record(self.trainer)
            self._end_keeping(last)
            self._close_trainer()
        if last is None:
            self.emit("finished", Finished(step, epoch, reason,
                                           batch_size=config.batch_size if reason == OUT_OF_MEMORY else 0))
        self.emit("requeue_probe", None)

    def _run(self, config: TrainConfig, control, augment, between_events, on_step, resume_state,
             side_probe, run_path):
        """Train until the run ends; the trainer's last word (Finished/Diverged), None if it had none."""
        from ..training import Trainer
        if self.bundle is None or self.data is None:
            raise ModelError("Open a model and a dataset before training.")
        if is_inspect_only(self.bundle):
            raise ModelError(training_refusal(self.bundle))
        if not self.bundle.probeable:
            raise ModelError("This model cannot be trained here (TorchScript has no hooks or optimizer state).")
        if self.bundle.num_classes != len(self.data.class_names):
            raise ModelError(f"The model has {self.bundle.num_classes} outputs but the dataset has "
                             f"{len(self.data.class_names)} classes.")
        if augment is not None and self._source is not None and augment != self._source.augment:
            source = replace(self._source, augment=augment)
            data, info = self._prepared(self.bundle, source, fresh=self._fresh, origin=source.spec)
            self._commit_data(self.bundle, source, data, info)
        self._fresh = False  # trained from here on: its normalisation is now part of it
        self._close_inspector()  # the Trainer's own Inspector owns the hooks now
        self.side = self._start_side_probe(control, side_probe)
        side = self.side
        progress = self._on_progress

        def after_step(step: int, loss: float, acc: float) -> None:
            if progress is not None:
                progress()
            if side is not None:
                side.after_step(self.bundle.model)
            if keeper is not None:
                keeper.step(step, loss, acc)
            if on_step is not None:
                on_step(step, loss, acc)

        keeper = None
        self._last_epoch: EpochEnd | None = None
        self.trainer = Trainer(self.bundle, self.data, config, control, on_step=after_step, on_progress=progress)
        if resume_state is not None:
            try:
                self.trainer.load_state_dict(resume_state)
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise LoadError(self.bundle.source, f"its training state is damaged or does not fit this run "
                                f"({exc})", "train from scratch, or use another checkpoint") from exc
        for n in self.trainer.notices:
            self.emit("notice", n)
        from .live import LiveLooking
        self.live = LiveLooking(self, self.trainer, self.emit)
        keeper = self._keeper = self._start_keeping(config, run_path, resumed=resume_state is not None)
        self.emit("started_training", None)
        if keeper is not None:
            self.emit("run_started", RunStarted(keeper.run_file, keeper.autosave.record.checkpoint
                                                if keeper.autosave is not None else None, self.trainer.step))
        for event in self.trainer.run():
            self._emit_event(event)
            self.live.after_event(event)
            if keeper is not None:
                keeper.event(event)
            if isinstance(event, (Finished, Diverged)):
                return event
            if between_events is not None:
                between_events()
        return None

    # ==== keeping runs: run files and autosaves ========================================
    def _start_keeping(self, config: TrainConfig, run_path: str | None, *, resumed: bool):
        if not self.keep_runs and run_path is None:
            return None
        from ..user_dirs import autosave_dir, runs_dir
        from .run_keeper import RunKeeper, run_meta
        meta = run_meta(self, config)
        return RunKeeper(self.trainer, checkpoint=self.checkpoint_bundle, meta=meta, emit=self.emit,
                         autosave_dir=autosave_dir() if self.keep_runs else None,
                         runs_dir=runs_dir() if self.keep_runs else None, run_path=run_path,
                         run_id=self._run_id if resumed else None)

    def _end_keeping(self, last) -> None:
        from .run_keeper import end_state
        keeper, self._keeper = getattr(self, "_keeper", None), None
        if keeper is None:
            return
        state = end_state(last, interrupted=self.interrupted)
        try:
            keeper.end(state)
        except Exception as exc:  # noqa: BLE001 - the run is over either way
            log.warning("could not finish keeping the run: %s", exc)
        if self.trainer is not None:
            self._run_id = keeper.run_id   # a later resume of this state continues the same run

    def _start_side_probe(self, control, factory) -> SideProbe | None:
        n_params = sum(p.numel() for p in self.bundle.model.parameters())
        if factory is None or (n_params < SIDE_PROBE_MIN_PARAMS and not self.side_probe_always):
            return None
        try:
            return factory(self.bundle, self.data, control)  # copied before the Trainer adds hooks
        except Exception as exc:  # noqa: BLE001 - e.g. a model holding a lock cannot be copied
            self.emit("notice", f"Views update only between training steps ({type(exc).__name__}: {exc}).")
            return None

    def _emit_event(self, event) -> None:
        if isinstance(event, TrainingSnapshot):
            self.emit("training_snapshot", event)
        elif isinstance(event, EpochEnd):
            self._last_epoch = event
            self.emit("epoch_end", event)
        elif isinstance(event, Diverged):
            self.emit("diverged", event)
        elif isinstance(event, Finished):
            self.emit("finished", event)
        # Paused: nothing to tell; it only gives the service a chance to read commands.

    def _close_live(self) -> None:
        live, self.live = self.live, None
        if live is not None:
            live.close()

    def _close_side(self) -> None:
        side, self.side = self.side, None
        if side is not None:
            side.close()

    def _close_trainer(self) -> None:
        if self.trainer is not None:
            try:
                self.trainer.close()
            finally:
                self.trainer = None

    # ==== weights and files =========================================================
    def reset_weights(self, seed: int | None = None) -> None:
        """Fresh seeded weights; ``seed`` None: the last run's seed (0 before any run).

        During a run the trainer resets itself (weights, optimizer, step 0), seeded by its config.
        """
        from ..training import reinitialise
        self._last_run = None
        if self.trainer is not None:
            self.trainer.reset_weights()
            return
        if self.bundle is None:
            return
        # The same seeded re-initialisation as Trainer.reset_weights: the same seed, the same weights.
        reinitialise(self.bundle.model, self._seed if seed is None else int(seed))
        self.emit("requeue_probe", None)
        self.emit("notice", "Weights reset to fresh random values.")

    def _run_record(self, trainer) -> dict:
        """What a checkpoint says about a run: its resumable state and its figures."""
        last = getattr(self, "_last_epoch", None)
        return {"state": trainer.state_dict(), "epochs": trainer.epoch, "steps": trainer.step,
                "config": trainer.config.to_dict(),
                "val_accuracy": None if last is None else last.val_accuracy}

    def checkpoint_bundle(self) -> tuple[ModelBundle, dict | None]:
        """The open model with the metadata every saved checkpoint carries (app and command line
        alike), and the resumable training state: of the run going on, else of the run that just ended."""
        if self.bundle is None:
            raise ModelError("There is no model to save.")
        meta = dict(self.bundle.meta, dataset=self.dataset_spec)
        meta.pop("training_state", None)
        if self._source is not None:
            meta["seed"] = self._source.seed
            # How the data were split and augmented: what `train --resume` reuses (core/resume.py).
            aug = self._source.augment
            meta["data"] = {"val_fraction": self._source.val_fraction, "limit": self._source.limit,
                            "augment": asdict(aug) if aug is not None and aug.active else False}
        run = self._run_record(self.trainer) if self.trainer is not None else self._last_run
        if run is not None:
            meta.update({k: v for k, v in run.items() if k != "state"})
        return replace(self.bundle, meta=meta), (run["state"] if run is not None else None)

    def load_resumable(self, path: str, *, model_spec: str | None = None) -> tuple[TrainConfig, dict]:
        """Open a checkpoint with a training state (an autosave, ``train``'s output) to continue its run:
        its model, its data set split and augmented as recorded, and the (config, state) for ``train``.

        The same rules as ``train --resume`` (``core/resume.py``): the saved optimizer, schedule,
        seed and split; a data set whose classes differ is refused. An autosave of the user's own
        model (``file.py:Name``) runs that file again, as opening it did; ``model_spec`` points to it
        elsewhere. Nothing changes unless all of it worked.
        """
        from ..checkpoint import load_model
        from ..resume import check_same_classes, resumed_settings, saved_augment
        bundle = load_model(path, model_spec=model_spec)
        state = bundle.meta.get("training_state")
        if not isinstance(state, dict):
            raise LoadError(path, "holds no training state to resume from", "open it as a model and train anew")
        config, data = resumed_settings(path, bundle.arch, dict(bundle.arch_options), bundle.meta, state, {})
        spec = bundle.meta.get("dataset")
        if not spec:
            raise LoadError(path, "does not say which data set it was trained on", "open it and choose the data set")
        seed = bundle.meta.get("seed", config.seed)
        source = self._read_dataset(spec, data["limit"], saved_augment(data["augment"]), int(seed),
                                    float(data["val_fraction"]))
        check_same_classes(path, bundle.class_names, str(spec), source.dataset.class_names)
        run_id = bundle.meta.get("run_id")
        self._install(bundle, fresh=False, trusted=False, source=source, origin=str(path))
        self._run_id = str(run_id) if isinstance(run_id, str) and run_id else None
        return config, state

    def save(self, path: str, *, with_training_state: bool = True) -> None:
        """Our checkpoint (atomic); with the resumable training state when there is one (``train --resume``)."""
        from ..checkpoint import save_checkpoint
        bundle, state = self.checkpoint_bundle()
        save_checkpoint(path, bundle, training_state=state if with_training_state else None)
        self.emit("saved", str(path))

    def save_safetensors(self, path: str) -> None:
        from ..checkpoint import save_safetensors
        if self.bundle is None:
            raise ModelError("There is no model to save.")
        save_safetensors(path, self.bundle)
        self.emit("saved", str(path))

    def close(self) -> None:
        self._close_side()
        self._close_live()
        self._close_trainer()
        self._close_inspector()
        self.bundle = None

