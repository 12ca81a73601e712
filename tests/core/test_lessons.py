"""Lessons as data: every built-in one is valid and complete, files round-trip, and untrusted files are refused."""
from __future__ import annotations

import json
import math
import os

import pytest

from visualizer.core.architectures.catalog import ARCHITECTURES
from visualizer.core.config import TrainConfig
from visualizer.core.errors import LoadError
from visualizer.core.lesson_catalog import LESSONS, LESSONS_BY_NAME, WATCH_IT_LEARN
from visualizer.core.lessons import (
    FORMAT,
    KEEP,
    SAMPLE,
    VIEW_KEYS,
    Lesson,
    LessonError,
    Variant,
    lesson_from_dict,
    lesson_from_settings,
    lesson_to_dict,
    read_lesson,
    write_lesson,
)
from visualizer.core.recipes import WATCH_LENET5_LEARN

PANEL_KEYS = {"arch", "dataset", "activation", "pooling", "batchnorm", "dropout", "width", "epochs", "batch_size",
              "optimizer", "lr", "momentum", "nesterov", "weight_decay", "schedule", "step_size", "gamma", "seed",
              "max_steps_per_sec", "clip_enabled", "rotation", "translation", "scale", "hflip"}


def test_the_issues_lessons_are_all_there():
    names = set(LESSONS_BY_NAME)
    assert LESSONS[0] is WATCH_IT_LEARN and WATCH_IT_LEARN.title == "Watch LeNet-5 learn"
    for wanted in ("convolution_step_by_step", "activation_functions", "vanishing_gradients", "exploding_gradients",
                   "max_vs_average_pooling", "fully_connected_softmax", "minibatch_sgd", "overfitting",
                   "class_activation_maps", "lenet5", "alexnet", "vgg", "googlenet", "resnet", "mobilenet"):
        assert wanted in names
    classic = [les for les in LESSONS if les.group == "Classic architectures"]
    assert [les.arch() for les in classic] == ["lenet5", "alexnet", "vgg11", "googlenet", "resnet18", "mobilenetv2"]
    assert all(les.highlight for les in classic)


def test_watch_it_learn_is_the_measured_recipe():
    r, les = WATCH_LENET5_LEARN, WATCH_IT_LEARN
    cfg = les.train_config()
    for k, v in r.train.items():
        assert getattr(cfg, k) == v
    assert (les.arch(), les.dataset, les.layer, les.filter_scale) == (r.arch, r.dataset, r.filter_layer, r.filter_scale)
    assert les.front == "filters" and les.filter_mode == "weights and change"
    assert not les.uses_sample()      # fresh weights


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda les: les.name)
def test_every_lesson_gives_every_panel_setting_and_a_valid_run(lesson):
    for variant in (None, *lesson.variants):
        values = lesson.panel_values(variant)
        assert set(values) >= PANEL_KEYS - {"grad_clip"}
        assert values["arch"] in ARCHITECTURES and values["dataset"] == lesson.dataset
        lesson.train_config(variant).validate()
        assert lesson.front in VIEW_KEYS
        assert 20 <= len(lesson.text) <= 600 and lesson.text.count(". ") <= 3


def test_variants_change_only_what_they_name():
    vanishing = LESSONS_BY_NAME["vanishing_gradients"]
    base = vanishing.panel_values()
    assert (base["arch"], base["activation"], base["batchnorm"], base["width"]) == ("plain18", "sigmoid", False, 0.5)
    residual = vanishing.panel_values(vanishing.variant("ReLU, residual"))
    assert (residual["arch"], residual["activation"], residual["batchnorm"]) == ("resnet18", "relu", False)
    assert residual["lr"] == base["lr"] and residual["width"] == 0.5
    exploding = LESSONS_BY_NAME["exploding_gradients"]
    assert exploding.panel_values()["clip_enabled"] is False
    clipped = exploding.panel_values(exploding.variant("lr 1.0, clipped at 1"))
    assert clipped["clip_enabled"] is True and clipped["grad_clip"] == 1.0 and clipped["lr"] == 1.0
    over = LESSONS_BY_NAME["overfitting"]
    assert over.data_limit() == 600 and over.data_limit(over.variant("+ dropout")) == 600
    assert over.data_limit(over.variant("All the data")) == 0
    assert over.augment_values(over.variant("+ augmentation"))["rotation"] == 15.0
    conv = LESSONS_BY_NAME["convolution_step_by_step"]
    v = conv.variant("C3: across 6 channels")
    assert conv.selected_layer(v) == "C3" and conv.uses_sample(v) and v.limit == KEEP
    with pytest.raises(KeyError):
        conv.variant("no such variant")


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda les: les.name)
def test_a_lesson_survives_its_file(tmp_path, lesson):
    path = tmp_path / "x.lesson.json"
    write_lesson(path, lesson)
    raw = path.read_text("utf-8")
    assert len(raw) < 4000 and json.loads(raw)["format"] == FORMAT
    assert read_lesson(path) == lesson


def _good() -> dict:
    return lesson_to_dict(LESSONS_BY_NAME["overfitting"])


@pytest.mark.parametrize("change, why", [
    (lambda d: d.update(format="something else"), "not a lesson file"),
    (lambda d: d.update(version=99), "version"),
    (lambda d: d.update(version=True), "version"),
    (lambda d: d.update(surprise=1), "unknown field"),
    (lambda d: d.pop("text"), "no 'text'"),
    (lambda d: d.update(model="../evil.py:Net"), "model"),
    (lambda d: d.update(model=["lenet5"]), "model"),
    (lambda d: d.update(dataset="my_model.py"), "not a data set"),
    (lambda d: d.update(dataset=""), "dataset"),
    (lambda d: d.update(options={"activation": "swish"}), "activation"),
    (lambda d: d.update(options={"width": 1e9}), "width"),
    (lambda d: d.update(options={"in_channels": 3}), "not a model option"),
    (lambda d: d.update(options=[1, 2]), "must be an object"),
    (lambda d: d.update(train={"lr": float("nan")}), "lr"),
    (lambda d: d.update(train={"lr": "0.1"}), "must be a number"),
    (lambda d: d.update(train={"batch_size": 1e7}), "batch_size"),
    (lambda d: d.update(train={"epochs": 2.5}), "whole number"),
    (lambda d: d.update(train={"epochs": 20.0}), "whole number"),          # a float would reach the engine
    (lambda d: d.update(limit=600.0), "whole number"),
    (lambda d: d.update(limit=10 ** 400), "outside"),                       # no OverflowError
    (lambda d: d.update(train={"lr": 1e-7}), "lr"),                         # below what the panel can show
    (lambda d: d.update(train={"device": "cuda"}), "not a training setting"),
    (lambda d: d.update(train={"optimizer": "lbfgs"}), "optimizer"),
    (lambda d: d.update(train={"nesterov": True, "optimizer": "adam"}), "Nesterov"),
    (lambda d: d.update(augment={"rotation": -5}), "rotation"),
    (lambda d: d.update(front="terminal"), "not a view"),
    (lambda d: d.update(limit=-3), "limit"),
    (lambda d: d.update(title="x" * 500), "characters long"),
    (lambda d: d.update(text=""), "must not be empty"),
    (lambda d: d.update(highlight="C1"), "list"),
    (lambda d: d.update(curves="yes"), "true or false"),
    (lambda d: d.update(variants=[{"title": "a"}, {"title": "a"}]), "twice"),
    (lambda d: d.update(variants=[{"title": "a", "options": {"arch": "gpt"}}]), "architecture"),
    (lambda d: d.update(variants=[{"title": "a", "run": "rm -rf"}]), "unknown field"),
    (lambda d: d.update(variants=[{"title": f"v{i}"} for i in range(40)]), "at most"),
])
def test_bad_lesson_data_is_refused_naming_the_field(change, why):
    data = _good()
    change(data)
    with pytest.raises(LessonError, match=why):
        lesson_from_dict(data)


@pytest.mark.parametrize("content, why", [
    (b"\xff\xfe not utf-8", "JSON"),
    (b"{not json", "JSON"),
    (b"[" * 200_000 + b"]" * 200_000, "lesson file is at most"),
    (b"[" * 5000 + b"]" * 5000, "JSON"),
    (b"[1, 2, 3]", "one JSON object"),
    (b'{"format": "cnn-visualizer-lesson", "version": 1}', "no 'name'"),
])
def test_bad_lesson_files_are_refused_as_load_errors(tmp_path, content, why):
    path = tmp_path / "bad.lesson.json"
    path.write_bytes(content)
    with pytest.raises(LoadError, match=why) as err:
        read_lesson(path)
    assert str(path) in str(err.value)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.lesson.json"
    os.mkfifo(path)
    with pytest.raises(LoadError, match="not a regular file"):
        read_lesson(path)


def test_a_missing_file_is_a_load_error(tmp_path):
    with pytest.raises(LoadError, match="could not be read"):
        read_lesson(tmp_path / "absent.json")


def test_the_window_state_becomes_a_lesson():
    base = LESSONS_BY_NAME["minibatch_sgd"]
    values = base.panel_values(base.variant("Batch 8"))
    values.update(lr=0.02, max_steps_per_sec=2.0, clip_enabled=True, grad_clip=5.0, rotation=10.0)
    les = lesson_from_settings(values, name="friday", title="Friday's class", model="lenet5", front="filters",
                               layer="C3", limit=500, base=base)
    cfg = les.train_config()
    assert (cfg.lr, cfg.batch_size, cfg.max_steps_per_sec, cfg.grad_clip) == (0.02, 8, 2.0, 5.0)
    assert les.augment_values()["rotation"] == 10.0 and les.limit == 500 and les.layer == "C3"
    assert les.text == base.text and les.variants == base.variants and les.front == "filters"
    assert lesson_from_dict(json.loads(json.dumps(lesson_to_dict(les)))) == les
    sample = lesson_from_settings(values, name="s", title="S", model=SAMPLE, front="cam")
    assert sample.uses_sample() and not sample.options
    with pytest.raises(LessonError):
        lesson_from_settings({**values, "lr": math.inf}, name="s", title="S", model="lenet5", front="cam")


def test_lessons_are_frozen_and_checked_on_creation():
    les = LESSONS[0]
    with pytest.raises(TypeError):
        les.train["lr"] = 1.0   # type: ignore[index]
    with pytest.raises(LessonError, match="front"):
        Lesson(name="x", title="X", text="Some text to read.", front="nowhere")
    with pytest.raises(LessonError, match="optimizer"):
        Lesson(name="x", title="X", text="Some text to read.", variants=(Variant("v", train={"optimizer": "?"}),))
    assert TrainConfig(**{**les.train}).lr == les.train_config().lr
