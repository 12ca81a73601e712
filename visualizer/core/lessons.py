"""Lessons: ready-made set-ups for a lecture, as plain data (no torch, no Qt).

A lesson names the model (a zoo architecture with its options, or the shipped trained
sample), the data (a built-in set, optionally a small subset), the training settings
(optimizer, learning rate, batch size, slow-motion speed), which view is in front, which
layer is selected and which layers the layer tree highlights, and the two or three
sentences (and formula) the explanation panel shows. *Variants* are named changes on top
of it (ReLU instead of Sigmoid, average instead of max pooling, a residual network instead
of a plain one) that the explanation panel offers as buttons, so a comparison is one click.

``Lesson.panel_values(variant)`` turns a lesson into the training panel's settings
(``TrainingPanel.values()`` keys), every field given, so a lesson never inherits what the
previous one or the user left behind. Lesson files are JSON and are untrusted data:
``lesson_from_dict`` checks every field's type and range and refuses anything else,
including Python model files (a lesson must never run code; checkpoints go through the
app's usual trust question). The built-in lessons are ``lesson_catalog.LESSONS``; the first is the
"watch it learn" recipe measured by ``scripts/watch_it_learn.py`` (``recipes.py``).
"""
from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Mapping

from .architectures.catalog import ACTIVATIONS, ARCHITECTURES, MAX_WIDTH, POOLINGS
from .config import OPTIMIZERS, SCHEDULES, TrainConfig
from .datasets.builtin import BUILTIN_DATASETS
from .errors import LoadError
from .recipes import FILTER_SCALES

FORMAT = "cnn-visualizer-lesson"
VERSION = 1
MAX_FILE_BYTES = 256 * 1024     # a lesson is a few hundred bytes; anything this big is not one
MAX_TEXT = 2000
MAX_TITLE = 80
MAX_VARIANTS = 12
MAX_HIGHLIGHTS = 32
SAMPLE = "sample"               # Lesson.model: the shipped LeNet-5 trained on MNIST
KEEP = -1                       # Variant.limit: keep the lesson's data subset
# What Lesson.front may name (the window maps each to its view).
VIEW_KEYS = ("feature_maps", "filters", "pooling", "activations", "gradients", "prediction",
             "step_by_step", "cam")
FILTER_MODES = ("weights", "change since start", "gradient", "weights and change")
MODEL_OPTIONS = ("activation", "pooling", "batchnorm", "dropout", "width")
AUGMENT_KEYS = ("rotation", "translation", "scale", "hflip")
# TrainConfig fields a lesson may set (the device is the machine's business, not the lesson's).
TRAIN_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("device", "snapshot_hz",
                                                                         "instrumentation_budget"))
MAX_SPEED = 1000.0              # steps per second; 0 is full speed
# The training panel's ranges: a lesson outside them could not be shown in the panel.
LIMITS = {"epochs": (1, 1000), "batch_size": (1, 4096), "seed": (0, 2_147_483_647), "step_size": (1, 1000),
          "lr": (1e-6, 10.0), "momentum": (0.0, 0.999), "weight_decay": (0.0, 1.0), "gamma": (0.01, 1.0),
          "grad_clip": (0.01, 1000.0), "max_steps_per_sec": (0.0, MAX_SPEED)}
# A lecture's pace unless a lesson says otherwise: the panel's "Lecture" speed.
LECTURE_SPEED = 10.0


class LessonError(ValueError):
    """A lesson (built in or read from a file) that cannot be used; the text says which field and why."""


@dataclass(frozen=True)
class Variant:
    """A named change on top of a lesson: offered as a button in the explanation panel."""

    title: str
    note: str = ""                                        # one sentence: what to look at now
    options: Mapping[str, Any] = field(default_factory=dict)   # model options (and "arch")
    train: Mapping[str, Any] = field(default_factory=dict)     # TrainConfig fields
    augment: Mapping[str, Any] = field(default_factory=dict)
    limit: int = KEEP                                     # samples of the data set (0: all); KEEP: unchanged
    layer: str = ""                                       # select this layer ("": the lesson's)

    def __post_init__(self):
        for name in ("options", "train", "augment"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


@dataclass(frozen=True)
class Lesson:
    name: str                                  # key in LESSONS, and the file's default name
    title: str                                 # menu entry and panel heading
    text: str                                  # what to look at: two or three sentences
    formula: str = ""                          # one line of plain Unicode where a formula helps
    group: str = ""                            # submenu of the Lessons menu ("" = top level)
    model: str = "lenet5"                      # a zoo architecture, or SAMPLE
    options: Mapping[str, Any] = field(default_factory=dict)   # model options over the architecture's own
    dataset: str = "mnist"                     # a built-in data set name or a path
    limit: int = 0                             # use only this many samples (0: all of them)
    train: Mapping[str, Any] = field(default_factory=dict)     # TrainConfig fields over the defaults
    augment: Mapping[str, Any] = field(default_factory=dict)
    front: str = "feature_maps"                # the view brought to the front (VIEW_KEYS)
    layer: str = ""                            # the layer selected ("": the model's default)
    filter_mode: str = ""                      # FilterView mode ("" leaves it)
    filter_scale: str = ""                     # FilterView scale ("" leaves it)
    highlight: tuple[str, ...] = ()            # layer-name patterns (fnmatch) or "kind:<kind>" to highlight
    curves: bool = False                       # give the loss and accuracy curves more room
    variants: tuple[Variant, ...] = ()

    def __post_init__(self):
        for name in ("options", "train", "augment"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "highlight", tuple(self.highlight))
        object.__setattr__(self, "variants", tuple(self.variants))
        validate(self)

    # ---- what the window sets ---------------------------------------------------------
    def arch(self, variant: Variant | None = None) -> str:
        """The zoo architecture the lesson builds ("lenet5" for the sample)."""
        if variant is not None and "arch" in variant.options:
            return str(variant.options["arch"])
        return "lenet5" if self.model == SAMPLE else self.model

    def uses_sample(self, variant: Variant | None = None) -> bool:
        """Opens the shipped trained model rather than building a fresh one."""
        changed = variant is not None and (set(variant.options) & {"arch", *MODEL_OPTIONS})
        return self.model == SAMPLE and not changed

    def model_options(self, variant: Variant | None = None) -> dict[str, Any]:
        """Build options: build_model's defaults, the architecture's recommended ones, the lesson's, the variant's."""
        arch = self.arch(variant)
        spec = ARCHITECTURES[arch]
        out: dict[str, Any] = {"activation": "relu", "pooling": "max", "batchnorm": False, "dropout": 0.0,
                               "width": float(spec.default_width)}
        out.update(spec.recommended)
        out.update(self.options)
        if variant is not None:
            out.update({k: v for k, v in variant.options.items() if k != "arch"})
        return out

    def selected_layer(self, variant: Variant | None = None) -> str:
        return variant.layer if variant is not None and variant.layer else self.layer

    def data_limit(self, variant: Variant | None = None) -> int:
        return self.limit if variant is None or variant.limit == KEEP else variant.limit

    def train_config(self, variant: Variant | None = None) -> TrainConfig:
        extra = dict(variant.train) if variant is not None else {}
        return TrainConfig(**{**DEFAULT_TRAIN, **self.train, **extra})

    def augment_values(self, variant: Variant | None = None) -> dict[str, Any]:
        out = {"rotation": 0.0, "translation": 0.0, "scale": 0.0, "hflip": False}
        out.update(self.augment)
        if variant is not None:
            out.update(variant.augment)
        return out

    def panel_values(self, variant: Variant | None = None) -> dict[str, Any]:
        """Every setting of the training panel (``TrainingPanel.values()`` keys) this lesson asks for."""
        cfg = self.train_config(variant)
        out: dict[str, Any] = {"arch": self.arch(variant), "dataset": self.dataset}
        out.update(self.model_options(variant))
        out.update({k: getattr(cfg, k) for k in TRAIN_KEYS if k != "grad_clip"})
        out["clip_enabled"] = cfg.grad_clip is not None
        if cfg.grad_clip is not None:
            out["grad_clip"] = float(cfg.grad_clip)
        out.update(self.augment_values(variant))
        return out

    def variant(self, title: str) -> Variant:
        for v in self.variants:
            if v.title == title:
                return v
        raise KeyError(f"lesson {self.name!r} has no variant {title!r}")


# The panel's defaults a lesson starts from (TrainConfig's, at a lecture's pace).
DEFAULT_TRAIN: Mapping[str, Any] = MappingProxyType({"epochs": 30, "max_steps_per_sec": LECTURE_SPEED})


# ==== validation (built-in lessons and files alike) ======================================
def _fail(where: str, problem: str) -> None:
    raise LessonError(f"{where}: {problem}")


def _check_text(where: str, value, limit: int, *, empty: bool = True) -> None:
    if not isinstance(value, str):
        _fail(where, f"must be text, not {type(value).__name__}")
    if len(value) > limit:
        _fail(where, f"is {len(value)} characters long; at most {limit}")
    if not empty and not value.strip():
        _fail(where, "must not be empty")


def _number(where: str, value, lo: float, hi: float, *, integer: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(where, f"must be a number, not {type(value).__name__}")
    if integer and not isinstance(value, int):
        # 600.0 would reach the engine as a float and fail there (slices, range()).
        _fail(where, f"{value!r} must be a whole number (written without a decimal point)")
    # An int is compared as it is: math.isfinite(10**400) raises OverflowError.
    if (isinstance(value, float) and not math.isfinite(value)) or not lo <= value <= hi:
        _fail(where, f"{_short(value)} is outside {lo:g}..{hi:g}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "…"


def _check_options(where: str, options: Mapping, *, allow_arch: bool) -> None:
    allowed = MODEL_OPTIONS + (("arch",) if allow_arch else ())
    for key, value in options.items():
        w = f"{where} option {key!r}"
        if key not in allowed:
            _fail(w, f"is not a model option (one of {', '.join(allowed)})")
        if key == "arch" and (not isinstance(value, str) or value not in ARCHITECTURES):
            _fail(w, f"{value!r} is not a built-in architecture ({', '.join(ARCHITECTURES)})")
        elif key == "activation" and value not in ACTIVATIONS:
            _fail(w, f"{value!r} is not one of {', '.join(ACTIVATIONS)}")
        elif key == "pooling" and value not in POOLINGS:
            _fail(w, f"{value!r} is not one of {', '.join(POOLINGS)}")
        elif key == "batchnorm" and not isinstance(value, bool):
            _fail(w, "must be true or false")
        elif key == "dropout":
            _number(w, value, 0.0, 0.9)
        elif key == "width":
            _number(w, value, 0.25, MAX_WIDTH)


def _check_train(where: str, train: Mapping) -> None:
    for key, value in train.items():
        w = f"{where} training setting {key!r}"
        if key not in TRAIN_KEYS:
            _fail(w, f"is not a training setting (one of {', '.join(TRAIN_KEYS)})")
        if key == "optimizer" and value not in OPTIMIZERS:
            _fail(w, f"{value!r} is not one of {', '.join(OPTIMIZERS)}")
        elif key == "schedule" and value not in SCHEDULES:
            _fail(w, f"{value!r} is not one of {', '.join(SCHEDULES)}")
        elif key == "nesterov" and not isinstance(value, bool):
            _fail(w, "must be true or false")
        elif key == "grad_clip" and value is None:
            continue
        elif key in LIMITS:
            lo, hi = LIMITS[key]
            _number(w, value, lo, hi, integer=key in ("epochs", "batch_size", "seed", "step_size"))


def _check_augment(where: str, augment: Mapping) -> None:
    ranges = {"rotation": (0.0, 180.0), "translation": (0.0, 0.5), "scale": (0.0, 0.5)}
    for key, value in augment.items():
        w = f"{where} augmentation {key!r}"
        if key not in AUGMENT_KEYS:
            _fail(w, f"is not an augmentation (one of {', '.join(AUGMENT_KEYS)})")
        if key == "hflip":
            if not isinstance(value, bool):
                _fail(w, "must be true or false")
        else:
            _number(w, value, *ranges[key])


def _check_dataset(where: str, spec) -> None:
    _check_text(where, spec, 1000, empty=False)
    if spec in BUILTIN_DATASETS:
        return
    if spec.endswith(".py") or ".py:" in spec or "\0" in spec:
        _fail(where, f"{spec!r} is not a data set")


def _check_limit(where: str, value, *, keep: bool) -> None:
    _number(where, value, KEEP if keep else 0, 10_000_000, integer=True)


def validate(lesson: Lesson) -> None:
    """Raise LessonError naming the first field that is not usable."""
    where = f"lesson {lesson.name!r}"
    _check_text(f"{where} name", lesson.name, MAX_TITLE, empty=False)
    _check_text(f"{where} title", lesson.title, MAX_TITLE, empty=False)
    _check_text(f"{where} text", lesson.text, MAX_TEXT, empty=False)
    _check_text(f"{where} formula", lesson.formula, MAX_TEXT)
    _check_text(f"{where} group", lesson.group, MAX_TITLE)
    for name in ("model", "front", "filter_mode", "filter_scale"):
        _check_text(f"{where} {name}", getattr(lesson, name), MAX_TITLE)
    if lesson.model != SAMPLE and lesson.model not in ARCHITECTURES:
        _fail(f"{where} model", f"{lesson.model!r} is neither {SAMPLE!r} nor a built-in architecture "
                                f"({', '.join(ARCHITECTURES)})")
    _check_options(where, lesson.options, allow_arch=False)
    _check_dataset(f"{where} dataset", lesson.dataset)
    _check_limit(f"{where} limit", lesson.limit, keep=False)
    _check_train(where, lesson.train)
    _check_augment(where, lesson.augment)
    if lesson.front not in VIEW_KEYS:
        _fail(f"{where} front", f"{lesson.front!r} is not a view ({', '.join(VIEW_KEYS)})")
    _check_text(f"{where} layer", lesson.layer, 200)
    if lesson.filter_mode and lesson.filter_mode not in FILTER_MODES:
        _fail(f"{where} filter_mode", f"{lesson.filter_mode!r} is not one of {', '.join(FILTER_MODES)}")
    if lesson.filter_scale and lesson.filter_scale not in FILTER_SCALES:
        _fail(f"{where} filter_scale", f"{lesson.filter_scale!r} is not one of {', '.join(FILTER_SCALES)}")
    if len(lesson.highlight) > MAX_HIGHLIGHTS:
        _fail(f"{where} highlight", f"has {len(lesson.highlight)} patterns; at most {MAX_HIGHLIGHTS}")
    for pattern in lesson.highlight:
        _check_text(f"{where} highlight", pattern, 200, empty=False)
    if not isinstance(lesson.curves, bool):
        _fail(f"{where} curves", "must be true or false")
    if len(lesson.variants) > MAX_VARIANTS:
        _fail(f"{where} variants", f"has {len(lesson.variants)}; at most {MAX_VARIANTS}")
    titles = set()
    for v in lesson.variants:
        if not isinstance(v, Variant):
            _fail(f"{where} variants", "must be variants")
        w = f"{where} variant {v.title!r}"
        _check_text(f"{where} variant title", v.title, MAX_TITLE, empty=False)
        if v.title in titles:
            _fail(w, "appears twice")
        titles.add(v.title)
        _check_text(f"{w} note", v.note, MAX_TEXT)
        _check_options(w, v.options, allow_arch=True)
        _check_train(w, v.train)
        _check_augment(w, v.augment)
        _check_limit(f"{w} limit", v.limit, keep=True)
        _check_text(f"{w} layer", v.layer, 200)
    for v in (None, *lesson.variants):
        try:   # the combination must make a valid run (e.g. Nesterov needs SGD with momentum)
            lesson.train_config(v).validate()
        except (TypeError, ValueError) as exc:
            _fail(where if v is None else f"{where} variant {v.title!r}", str(exc))


# ==== files ===========================================================================
def lesson_to_dict(lesson: Lesson) -> dict[str, Any]:
    """Plain JSON-able data; only what differs from a field's default is written (small files)."""
    out: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    for f in fields(Lesson):
        value = getattr(lesson, f.name)
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if f.name not in ("name", "title", "text") and _same(value, default):
            continue
        if f.name == "variants":
            value = [_variant_to_dict(v) for v in value]
        elif isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _same(a, b) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return dict(a) == dict(b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return list(a) == list(b)
    return a == b and type(a) is type(b)


def _variant_to_dict(v: Variant) -> dict[str, Any]:
    out: dict[str, Any] = {"title": v.title}
    if v.note:
        out["note"] = v.note
    for name in ("options", "train", "augment"):
        if getattr(v, name):
            out[name] = dict(getattr(v, name))
    if v.limit != KEEP:
        out["limit"] = v.limit
    if v.layer:
        out["layer"] = v.layer
    return out


def _mapping(where: str, value) -> dict:
    if not isinstance(value, dict):
        _fail(where, f"must be an object, not {type(value).__name__}")
    for k in value:
        if not isinstance(k, str):
            _fail(where, "keys must be text")
    return dict(value)


def lesson_from_dict(data) -> Lesson:
    """A Lesson from untrusted JSON data; LessonError names what is wrong."""
    if not isinstance(data, dict):
        raise LessonError(f"a lesson file holds one JSON object, not {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise LessonError(f"this is not a lesson file (its \"format\" is not {FORMAT!r})")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > VERSION or version < 1:
        raise LessonError(f"lesson file version {version!r} is not one this app reads (up to {VERSION})")
    known = {f.name for f in fields(Lesson)}
    unknown = sorted(set(data) - known - {"format", "version"})
    if unknown:
        raise LessonError(f"unknown field(s) in the lesson file: {', '.join(map(str, unknown))}")
    kwargs: dict[str, Any] = {}
    for name in known & set(data):
        value = data[name]
        if name in ("options", "train", "augment"):
            value = _mapping(name, value)
        elif name == "highlight":
            if not isinstance(value, list):
                raise LessonError("highlight: must be a list of layer-name patterns")
            value = tuple(value)
        elif name == "variants":
            if not isinstance(value, list) or len(value) > MAX_VARIANTS:
                raise LessonError(f"variants: must be a list of at most {MAX_VARIANTS}")
            value = tuple(_variant_from_dict(v) for v in value)
        kwargs[name] = value
    for name in ("name", "title", "text"):
        if name not in kwargs:
            raise LessonError(f"the lesson file has no {name!r}")
    try:
        return Lesson(**kwargs)
    except LessonError:
        raise
    except (TypeError, ValueError) as exc:
        raise LessonError(str(exc)) from exc


def _variant_from_dict(data) -> Variant:
    if not isinstance(data, dict):
        raise LessonError("variants: each variant must be an object")
    allowed = {"title", "note", "options", "train", "augment", "limit", "layer"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise LessonError(f"unknown field(s) in a variant: {', '.join(map(str, unknown))}")
    if not isinstance(data.get("title"), str):
        raise LessonError("variants: each variant needs a title")
    kwargs = dict(data)
    for name in ("options", "train", "augment"):
        if name in kwargs:
            kwargs[name] = _mapping(f"variant {data['title']!r} {name}", kwargs[name])
    return Variant(**kwargs)


def read_lesson(path: str | os.PathLike) -> Lesson:
    """Read a lesson file; LoadError names the file, the problem and what to do."""
    path = os.fspath(path)
    hint = "the lesson shown before is kept"
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            # A FIFO or a device would block the window in open() or read() for ever.
            raise LoadError(path, "is not a regular file", hint)
        size = info.st_size
        if size > MAX_FILE_BYTES:
            raise LoadError(path, f"is {size:,} bytes; a lesson file is at most {MAX_FILE_BYTES:,}", hint)
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise LoadError(path, f"could not be read ({exc.strerror or exc})", hint) from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise LoadError(path, f"is not a JSON lesson file ({type(exc).__name__}: {exc})", hint) from exc
    try:
        return lesson_from_dict(data)
    except (LessonError, RecursionError, OverflowError) as exc:
        raise LoadError(path, f"is not a usable lesson: {exc}", hint) from exc


def write_lesson(path: str | os.PathLike, lesson: Lesson) -> None:
    """Save atomically (a crash leaves the old file or the new one)."""
    from .checkpoint.atomic import atomic_write
    text = json.dumps(lesson_to_dict(lesson), indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def lesson_file_name(lesson: Lesson) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in lesson.name).strip("_") or "lesson"
    return f"{safe}.lesson.json"


def lesson_from_settings(values: Mapping[str, Any], *, name: str, title: str, model: str, front: str,
                         layer: str = "", limit: int = 0, base: Lesson | None = None) -> Lesson:
    """A lesson of the window's current state: the training panel's ``values()``, the model (a zoo
    architecture or SAMPLE), the view in front and the selected layer. The explanation, formula,
    highlights and variants come from ``base`` (the lesson it was opened as), if any."""
    options = {k: values[k] for k in MODEL_OPTIONS if k in values}
    train = {k: values[k] for k in TRAIN_KEYS if k in values and k != "grad_clip"}
    train["grad_clip"] = float(values["grad_clip"]) if values.get("clip_enabled") else None
    augment = {k: values[k] for k in AUGMENT_KEYS if k in values}
    keep = {}
    if base is not None:
        keep = {"text": base.text, "formula": base.formula, "highlight": base.highlight, "curves": base.curves,
                "filter_mode": base.filter_mode, "filter_scale": base.filter_scale, "variants": base.variants,
                "group": ""}
    return Lesson(name=name, title=title, model=model, options={} if model == SAMPLE else options,
                  dataset=str(values.get("dataset") or "mnist"), limit=int(limit), train=train, augment=augment,
                  front=front, layer=layer, **{"text": "Prepared for this class.", **keep})
