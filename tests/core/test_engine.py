"""The engine without Qt or threads: opening, switching, training, probing and saving.

Driven synchronously, as the service's thread drives it; every failure of a switch must
leave what was open untouched. Training runs on 256 digits at batch 32: a handful of steps.
"""
from __future__ import annotations

import numpy as np
import torch

from visualizer.core.config import TrainConfig
from visualizer.core.engine.engine import Engine
from visualizer.core.engine.messages import describe_error
from visualizer.core.snapshot import CaptureRequest, EpochEnd, Finished, TrainingSnapshot
from visualizer.core.training import TrainingControl

LIMIT = 256


def engine_with_sample():
    events: list = []
    engine = Engine(lambda name, payload: events.append((name, payload)), sample_limit=LIMIT)
    engine.load_sample()
    assert engine.bundle is not None and engine.data is not None
    events.clear()
    return engine, events


def run(engine, method, *args, events, **kwargs):
    """Call an engine method as the service does: a failure becomes one "failed" message."""
    try:
        getattr(engine, method)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - exactly what EngineService._guarded does
        events.append(("failed", describe_error(exc)))


def failures(events) -> list[str]:
    return [payload for name, payload in events if name == "failed"]


def lenet_bundle(**fields):
    from visualizer.core.architectures import build_model
    from visualizer.core.model_bundle import ModelBundle

    return ModelBundle(build_model("lenet5", in_channels=1, num_classes=10, input_size=32), (1, 32, 32),
                       tuple(str(i) for i in range(10)), arch="lenet5",
                       arch_options={"in_channels": 1, "num_classes": 10, "input_size": 32}, **fields)


def test_a_checkpoint_that_does_not_fit_changes_nothing(tmp_path):
    """mean with 2 values for a 1-channel model: refused naming the file, whichever layer refuses it."""
    import dataclasses

    from visualizer.core.checkpoint import save_checkpoint

    engine, events = engine_with_sample()
    try:
        before = (engine.bundle, engine.data, engine._source, engine._inspector, engine.bundle.mean, engine.bundle.std)
        path = tmp_path / "two_means.pt"
        save_checkpoint(path, dataclasses.replace(lenet_bundle(), mean=(0.1, 0.2), std=(1.0, 1.0)))
        run(engine, "load_file", str(path), events=events)
        assert len(failures(events)) == 1 and "two_means.pt" in failures(events)[0]
        assert not any(name in ("model_loaded", "data_ready") for name, _ in events)
        after = (engine.bundle, engine.data, engine._source, engine._inspector, engine.bundle.mean, engine.bundle.std)
        assert all(a is b for a, b in zip(before, after))

        # The same mismatch handed over as a bundle passes no loader: the worker's own check must hold.
        events.clear()
        run(engine, "load_bundle", lenet_bundle(mean=(0.1, 0.2), std=(1.0, 1.0), source=str(tmp_path / "odd.pt")),
            events=events)
        assert len(failures(events)) == 1 and "odd.pt" in failures(events)[0]
        assert not any(name in ("model_loaded", "data_ready") for name, _ in events)
        assert all(a is b for a, b in zip(before, (engine.bundle, engine.data, engine._source, engine._inspector,
                                                    engine.bundle.mean, engine.bundle.std)))
        run(engine, "load_bundle", lenet_bundle(), events=events)  # and a good one still opens
        assert [n for n, _ in events if n == "model_loaded"] and engine.bundle is not before[0]
    finally:
        engine.close()


def test_a_bad_dataset_folder_keeps_the_old_data(tmp_path):
    engine, events = engine_with_sample()
    try:
        before = (engine.bundle, engine.data, engine._source)
        bad = tmp_path / "not_a_dataset"
        bad.mkdir()
        (bad / "notes.txt").write_text("no images here")
        run(engine, "set_dataset", str(bad), events=events)
        assert len(failures(events)) == 1 and "not_a_dataset" in failures(events)[0]
        assert all(a is b for a, b in zip(before, (engine.bundle, engine.data, engine._source)))
    finally:
        engine.close()


def test_a_dataset_the_model_cannot_take_keeps_everything(tmp_path, monkeypatch):
    """Reading works but preparing fails: the worker must not be left with the new data set half-installed."""
    import visualizer.core.assemble as assemble

    engine, events = engine_with_sample()
    try:
        before = (engine.bundle, engine.data, engine._source, engine.bundle.mean)

        def broken(*args, **kwargs):
            raise RuntimeError("simulated failure while preparing")

        monkeypatch.setattr(assemble, "data_for", broken)
        run(engine, "set_dataset", "digits", limit=LIMIT // 2, events=events)
        assert len(failures(events)) == 1 and "digits" in failures(events)[0]
        assert all(a is b for a, b in zip(before, (engine.bundle, engine.data, engine._source, engine.bundle.mean)))
    finally:
        engine.close()


def test_data_info_reads_labels_without_normalising_every_image(monkeypatch):
    import visualizer.core.engine.data_source as data_source
    from visualizer.core.datasets.preparation import SplitDataset

    engine, _events = engine_with_sample()
    try:
        monkeypatch.setattr(data_source, "GALLERY_MAX", 4)  # most labels come from beyond the gallery
        calls = [0]
        original = SplitDataset.__getitem__

        def counted(self, i):
            calls[0] += 1
            return original(self, i)

        monkeypatch.setattr(SplitDataset, "__getitem__", counted)
        info = data_source.data_info(engine.data, engine._source)
        split = engine.data.probe_split
        assert info.gallery.shape[0] == 4 and info.labels.shape == (info.n_val,) and info.n_val > 4
        assert np.array_equal(info.labels, engine.data.labels(split))
        assert calls[0] == 0, "labels were read by indexing the split (normalising, consuming the augmentation RNG)"
    finally:
        engine.close()


def test_idle_reset_is_seeded_like_the_trainer():
    import copy

    from visualizer.core.training import reinitialise

    engine, events = engine_with_sample()
    try:
        model = engine.bundle.model
        expected = copy.deepcopy(model)
        reinitialise(expected, 7)
        run(engine, "reset_weights", 7, events=events)
        first = {k: v.clone() for k, v in model.state_dict().items()}
        assert all(torch.equal(first[k], v) for k, v in expected.state_dict().items())
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        run(engine, "reset_weights", 7, events=events)
        assert all(torch.equal(first[k], v) for k, v in model.state_dict().items())
        run(engine, "reset_weights", None, events=events)  # no seed given and no run yet: seed 0
        reinitialise(expected, 0)
        assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.state_dict().items())
        assert not failures(events)
    finally:
        engine.close()


def test_describe_error_names_the_batch_size():
    text = describe_error(MemoryError(), 128)
    assert "128" in text and "64" in text


def test_the_engine_trains_probes_and_saves_without_qt(tmp_path):
    """The data path the window, the command line and scripts share: build, train, look, save, reopen."""
    from visualizer.core.checkpoint import load_model

    events: list = []
    engine = Engine(lambda name, payload: events.append((name, payload)))
    try:
        engine.set_dataset("digits", limit=LIMIT, seed=3)
        engine.build("lenet5", {"activation": "tanh"}, seed=3)
        names = [n for n, _ in events]
        assert names[:2] == ["data_ready", "model_loaded"]
        probe = engine.probe(CaptureRequest(layers=("*",), filter_layers=("C1",), request_id=1))
        assert probe.request_id == 1 and probe.layer("C1") is not None and probe.filters[0].name == "C1"

        control = TrainingControl()
        steps: list[int] = []
        engine.train(TrainConfig(epochs=2, batch_size=32, snapshot_hz=1000), control,
                     between_events=control.snapshot_consumed, on_step=lambda s, loss, acc: steps.append(s))
        kinds = [type(p).__name__ for n, p in events if n in ("training_snapshot", "epoch_end", "finished")]
        assert kinds.count("EpochEnd") == 2 and kinds[-1] == "Finished"
        assert steps == list(range(1, steps[-1] + 1)) and steps[-1] == 2 * -(-int(LIMIT * 0.9) // 32)
        snaps = [p for n, p in events if n == "training_snapshot"]
        assert snaps and all(isinstance(s, TrainingSnapshot) for s in snaps)
        assert snaps[-1].step == steps[-1] and snaps[-1].gradients and snaps[-1].probe is not None
        finished = [p for n, p in events if n == "finished"][-1]
        assert isinstance(finished, Finished) and finished.reason == "completed"
        epochs = [p for n, p in events if n == "epoch_end"]
        assert all(isinstance(e, EpochEnd) and e.val_accuracy is not None for e in epochs)

        path = tmp_path / "run.pt"
        engine.save(str(path))
        assert ("saved", str(path)) in events
        reopened = load_model(path)
        assert reopened.meta["dataset"] == "digits" and reopened.meta["seed"] == 3
        assert dict(reopened.arch_options)["activation"] == "tanh"
        for k, v in engine.bundle.model.state_dict().items():
            assert torch.equal(v, reopened.model.state_dict()[k]), k
    finally:
        engine.close()


def test_the_same_seed_gives_the_same_model_and_split():
    def setup(seed):
        engine = Engine(lambda *_: None)
        engine.set_dataset("digits", limit=LIMIT, seed=seed)
        engine.build("lenet5", {}, seed=seed)
        weights = {k: v.clone() for k, v in engine.bundle.model.state_dict().items()}
        labels = np.asarray(engine.data.labels("val")).copy()
        engine.close()
        return weights, labels

    (w1, l1), (w2, l2), (w3, _l3) = setup(5), setup(5), setup(6)
    assert all(torch.equal(w1[k], w2[k]) for k in w1) and np.array_equal(l1, l2)
    assert not all(torch.equal(w1[k], w3[k]) for k in w1)


def test_analyses_answer_on_the_open_model_and_its_input():
    """The numbers behind one output, where it looks, its health, what a channel looks for: each as a record."""
    import threading

    from visualizer.core.engine.analysis import analyse
    from visualizer.core.explain.records import ConvStep

    engine = Engine(lambda *_: None, sample_limit=400)   # enough samples for a health batch of 256
    engine.load_sample()
    try:
        request = CaptureRequest(probe_index=3)
        step = analyse(engine, "step", {"layer": "C1", "channel": 2, "y": 5, "x": 7}, request)
        assert isinstance(step, ConvStep)
        probe = engine.probe(CaptureRequest(layers=("C1",), probe_index=3))
        # the arithmetic shown equals the value the feature-map view shows for the same input
        assert abs(step.output - float(probe.layer("C1").maps[2, 5, 7])) < 1e-4
        cam = analyse(engine, "cam", {"method": "grad-cam", "layer": "C1"}, request)
        assert cam.heatmap.shape == tuple(engine.bundle.input_shape[1:]) and cam.heatmap.max() <= 1.0
        progress: list = []
        health = analyse(engine, "health", {"samples": 256}, request, progress=lambda d, t: progress.append(d))
        assert health.layers and health.samples >= 256 and progress
        cancel = threading.Event()
        cancel.set()
        patches = analyse(engine, "top_patches", {"layer": "C3"}, request, cancel=cancel)
        assert patches.cancelled
        try:
            analyse(engine, "nonsense", {}, request)
        except ValueError as exc:
            assert "nonsense" in str(exc)
        else:
            raise AssertionError("an unknown analysis was accepted")
    finally:
        engine.close()
