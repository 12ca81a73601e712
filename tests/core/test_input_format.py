"""A model's input format (normalisation, class names) given where its file does not record it.

What the user types or picks must reach every path that feeds the model: its probes, its data,
what it is saved with; and a wrong value, or a bad class-names file, changes nothing.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.core.test_engine import engine_with_sample, failures, run
from visualizer.core.checkpoint import load_model
from visualizer.core.config import TrainConfig
from visualizer.core.errors import LoadError
from visualizer.core.input_format import checked_input_format, presets_for, read_class_names
from visualizer.core.snapshot import CaptureRequest
from visualizer.core.training import TrainingControl

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def test_values_are_checked_with_a_reason_a_user_can_act_on():
    assert checked_input_format(3, 2, "0.485, 0.456 0.406", [0.229, 0.224, 0.225], ["cat", " dog "]) == \
        ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), ("cat", "dog"))
    assert checked_input_format(3, 2, "0.5", "0.25") == ((0.5,) * 3, (0.25,) * 3, ())   # one value: every channel
    for args, reason in (((3, 2, "0.1 0.2", "1"), "2 mean values for a model of 3 input channel"),
                         ((1, 2, "0.1", "0"), "std must be above 0"),
                         ((1, 2, "0.1", "-1"), "std must be above 0"),
                         ((1, 2, "nan", "1"), "finite"),
                         ((1, 2, "a", "1"), "'a' is not a number"),
                         ((1, 2, "", "1"), "0 mean values"),
                         ((1, 2, "0", "1", ["a", "b", "c"]), "3 class names for a model with 2 outputs"),
                         ((1, 2, "0", "1", ["a", ""]), "a class name is empty")):
        with pytest.raises(ValueError, match=reason):
            checked_input_format(*args)
    assert set(presets_for(1)) == {"none (mean 0, std 1)", "MNIST"}
    assert presets_for(3)["ImageNet"] == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert presets_for(3)["MNIST"] == ((0.1307,) * 3, (0.3081,) * 3)     # one value spread


def test_class_names_files_as_people_keep_them_and_bad_ones_refused(tmp_path):
    lines = tmp_path / "classes.txt"
    lines.write_text("\ufefftench\n\n goldfish \r\nshark\n", encoding="utf-8")
    assert read_class_names(lines) == ("tench", "goldfish", "shark")
    listed = tmp_path / "classes.json"
    listed.write_text(json.dumps(["a", "b"]))
    assert read_class_names(listed) == ("a", "b")
    index = tmp_path / "imagenet_class_index.json"     # torchvision's layout, keys out of order
    index.write_text(json.dumps({"1": ["n01443537", "goldfish"], "0": ["n01440764", "tench"]}))
    assert read_class_names(index) == ("tench", "goldfish")
    for name, content, reason in (("gap.json", json.dumps({"0": "a", "2": "b"}), "not 0, 1, 2"),
                                  ("keys.json", json.dumps({"x": "a"}), "not class numbers"),
                                  ("nested.json", json.dumps([{"a": 1}]), "dict where a name should be"),
                                  ("broken.json", "[\"a\",", "not a list of class names"),
                                  ("empty.txt", "\n \n", "holds no class names")):
        bad = tmp_path / name
        bad.write_text(content)
        with pytest.raises(LoadError, match=reason) as err:
            read_class_names(bad)
        assert name in str(err.value)
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"x\n" * (3 * 1024 * 1024))
    with pytest.raises(LoadError, match="at most"):
        read_class_names(huge)
    with pytest.raises(LoadError, match="could not be read"):
        read_class_names(tmp_path / "missing.txt")


def _expected_probabilities(engine, snap, mean, std):
    x = (torch.from_numpy(np.array(snap.input_image)) - mean) / std
    with torch.no_grad():
        return torch.softmax(engine.bundle.model.eval()(x[None]), 1)[0].numpy()


def test_the_model_is_probed_trained_and_saved_with_the_normalisation_given(tmp_path):
    engine, events = engine_with_sample()
    try:
        request = CaptureRequest(layers=("*",), probe_index=3)
        before = engine.probe(request)
        run(engine, "set_input_format", (0.5,), (0.25,), DIGITS, events=events)
        assert not failures(events)
        told = [p for n, p in events if n == "input_format"]
        assert told and told[-1].mean == (0.5,) and told[-1].std == (0.25,) and told[-1].class_names == DIGITS
        assert ("requeue_probe", None) in events and [n for n, _ in events].count("data_ready") == 1
        after = engine.probe(request)
        assert after.class_names == DIGITS
        np.testing.assert_array_equal(after.input_image, before.input_image)        # the same picture...
        np.testing.assert_allclose(after.probabilities, _expected_probabilities(engine, after, 0.5, 0.25),
                                   rtol=1e-4, atol=1e-6)                            # ...fed as asked
        assert np.abs(after.layer("C1").maps - before.layer("C1").maps).max() > 0.1   # the maps show it
        # The training data follows: a batch is the pictures normalised the same way.
        assert engine.data.mean == (0.5,) and engine.data.std == (0.25,)
        control = TrainingControl()
        engine.train(TrainConfig(epochs=1, batch_size=32), control, between_events=control.snapshot_consumed)
        assert [p for n, p in events if n == "finished"][-1].reason == "completed"
        path = tmp_path / "given.pt"
        engine.save(str(path))
        reopened = load_model(path)
        assert reopened.mean == (0.5,) and reopened.std == (0.25,) and reopened.class_names == DIGITS
    finally:
        engine.close()


def test_a_wrong_value_or_a_running_training_changes_nothing():
    engine, events = engine_with_sample()
    try:
        b = engine.bundle
        kept = (b.mean, b.std, b.class_names, engine.data)
        run(engine, "set_input_format", (0.1, 0.2), (1.0,), events=events)
        run(engine, "set_input_format", (0.1,), (0.0,), events=events)
        run(engine, "set_input_format", (0.1,), (1.0,), ("a", "b"), events=events)
        assert len(failures(events)) == 3 and all("model input was not changed" in f for f in failures(events))
        assert "2 mean values" in failures(events)[0] and "std must be above 0" in failures(events)[1]
        assert "2 class names for a model with 10 outputs" in failures(events)[2]
        engine.trainer = object()          # what a run going on looks like to the engine
        run(engine, "set_input_format", (0.1,), (1.0,), events=events)
        engine.trainer = None
        assert "Stop training first" in failures(events)[-1]
        assert (b.mean, b.std, b.class_names, engine.data) == kept
        assert not [n for n, _ in events if n in ("input_format", "data_ready")]
    finally:
        engine.close()
