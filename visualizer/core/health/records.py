"""The model health report as plain data (no torch), and the rules that turn figures into flags.

A report has one :class:`LayerHealth` row per weighted layer (conv, linear, norm) and per
activation layer, in execution order. Each row carries its figures, the
:class:`Thresholds` they were judged against, the flags they raised and, per flag, one
line on what to try. The measuring side (``measure.py`` on a batch, ``monitor.py`` live)
fills in the figures; :func:`judge` is the one place that decides what is a problem, so
the command line, the view and the live status bar always agree.

Why each default threshold (measured on this project's models, see the README):

- ``dead_fraction > 0.5``: a unit (a conv channel, a linear feature) is dead when it is zero
  for every sample of the batch *and* every position: it then passes no gradient to its
  weights. Healthy ReLU nets here have 0-26% dead units after a little training
  (LeNet-5 on digits, ResNet-18); past half, the layer has lost most of its capacity.
- ``saturated_fraction > 0.5``: sigmoid outputs below 0.01 or above 0.99 (|tanh| > 0.99)
  have a derivative under 0.01; when most outputs sit there the layer stops passing
  gradient. Same cut as for dead units.
- ``|act_mean|`` or ``act_std > 1e3``: activations of healthy nets stay within ~0-5 here;
  a thousand means they grow layer after layer (a too-large step, no normalisation).
- ``act_std < 1e-6``: a layer whose output is the same for the whole batch carries no
  information about its input (dead for any activation function).
- ``grad_norm > 1e2``: the gradient view's exploding line; healthy LeNet/ResNet layers
  measured 0.07-9 here.
- ``grad_relative < 1e-3``: a layer's relative gradient ‖∇W‖/‖W‖ (how fast it would
  learn under plain SGD) divided by the largest in the model. Healthy nets measured here
  spread by at most ~40x (ResNet-18 at initialisation; LeNet-5 after three epochs ~25x);
  a deep sigmoid plain net reaches 1e-16 at its first layer. Relative, not absolute, so
  a model that has converged (small gradients everywhere) is not called vanishing.
- ``update_ratio > 0.1``: ‖ΔW‖/‖W‖ of one optimizer step. Around 1e-3 is the usual
  healthy figure; LeNet-5 training at lr 0.01 peaked at 0.03, at lr 0.3-5 at 0.3-1.0.
- ``update_ratio < 1e-6``: three decades below the healthy figure: the layer would need
  a million steps to change by its own size. A frozen layer has exactly 0.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

DEAD = "dead"
SATURATED = "saturated"
VANISHING = "vanishing"
EXPLODING = "exploding"
NOT_LEARNING = "not learning"
# Most urgent first: the first flag of a row gives its advice line in the view and status bar.
FLAGS = (EXPLODING, DEAD, SATURATED, VANISHING, NOT_LEARNING)

# Activation functions whose dead units are exactly zero; leaky/ELU/GELU units never are.
ZERO_DEAD_FUNCTIONS = ("relu", "relu6")
SATURATING_FUNCTIONS = ("sigmoid", "tanh")

FRACTION_FIGURES = ("dead_fraction", "saturated_fraction")
FIGURES = ("dead_fraction", "saturated_fraction", "act_mean", "act_std", "grad_norm", "grad_relative",
           "update_ratio")


@dataclass(frozen=True)
class Thresholds:
    """Where each figure becomes a flag (see the module docstring for why these values)."""

    dead_fraction_max: float = 0.5
    saturated_fraction_max: float = 0.5
    act_abs_max: float = 1e3
    act_std_min: float = 1e-6
    grad_norm_max: float = 1e2
    grad_relative_min: float = 1e-3
    update_ratio_max: float = 1e-1
    update_ratio_min: float = 1e-6

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"threshold {f.name} must be a finite number >= 0, not {v!r}")
        if self.update_ratio_min >= self.update_ratio_max:
            raise ValueError("update_ratio_min must be below update_ratio_max")


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Rule:
    """``figure`` above (or below) ``Thresholds.<threshold>`` raises ``flag``."""

    figure: str
    flag: str
    above: bool
    threshold: str

    def text(self, t: Thresholds) -> str:
        """"> 50%", "< 0.001": the threshold as the table and the view write it."""
        v = getattr(t, self.threshold)
        value = f"{v:.0%}" if self.figure in FRACTION_FIGURES else f"{v:g}"
        return f"{'|x| >' if self.figure == 'act_mean' else '>' if self.above else '<'} {value}"


RULES = (
    Rule("dead_fraction", DEAD, True, "dead_fraction_max"),
    Rule("saturated_fraction", SATURATED, True, "saturated_fraction_max"),
    Rule("act_mean", EXPLODING, True, "act_abs_max"),      # compared as |mean|
    Rule("act_std", EXPLODING, True, "act_abs_max"),
    Rule("act_std", DEAD, False, "act_std_min"),
    Rule("grad_norm", EXPLODING, True, "grad_norm_max"),
    Rule("grad_relative", VANISHING, False, "grad_relative_min"),
    Rule("update_ratio", EXPLODING, True, "update_ratio_max"),
    Rule("update_ratio", NOT_LEARNING, False, "update_ratio_min"),
)


def rules_for(figure: str) -> tuple[Rule, ...]:
    return tuple(r for r in RULES if r.figure == figure)


ADVICE = {
    EXPLODING: "lower the learning rate or clip gradients; BatchNorm keeps activations in range",
    DEAD: "its units never fire on this batch: lower the learning rate, check the bias and the "
          "initialisation (Kaiming), or use LeakyReLU/ELU",
    SATURATED: "sigmoid/tanh outputs pinned at their limits pass almost no gradient: normalise the "
               "inputs, add BatchNorm, start from smaller weights, or use ReLU",
    VANISHING: "gradients shrink on the way to the input: use ReLU instead of sigmoid/tanh, add "
               "BatchNorm or residual connections, or use Kaiming initialisation",
    NOT_LEARNING: "its weights barely move per step: raise the learning rate, or check that the "
                  "optimizer holds this layer's parameters",
}
NO_GRADIENT_ADVICE = ("no gradient reaches this layer at all: a later layer blocks it (dead ReLUs, "
                      "a detach(), zero weights)")
FROZEN_ADVICE = "its weights are frozen (requires_grad=False): unfreeze them if this layer should learn"


@dataclass(frozen=True)
class LayerHealth:
    """One layer's figures (None: does not apply or not measured), thresholds and verdict."""

    name: str
    kind: str                          # conv, depthwise_conv, linear, norm, activation, ...
    function: str | None = None        # relu, sigmoid, ... for activation layers
    trainable: bool | None = None      # weights require grad (None: not a weighted layer)
    samples: int = 0                   # samples behind the activation figures
    dead_fraction: float | None = None       # units zero for every sample and position
    saturated_fraction: float | None = None  # outputs in the flat tails of sigmoid/tanh
    act_mean: float | None = None            # of the layer's output over the batch
    act_std: float | None = None
    grad_norm: float | None = None           # ‖∇W‖₂ of the weight
    grad_relative: float | None = None       # (‖∇W‖/‖W‖) / the model's largest such figure
    update_ratio: float | None = None        # ‖ΔW‖/‖W‖ of one optimizer step
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    flags: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()             # one line per flag, same order

    @property
    def flag(self) -> str | None:
        """The most urgent flag, or None for a healthy row."""
        return self.flags[0] if self.flags else None

    def figure_flags(self, figure: str) -> tuple[str, ...]:
        """The flags this figure raises (for colouring its cell)."""
        return tuple(r.flag for r in rules_for(figure) if _crosses(self, r))

    def to_dict(self) -> dict:
        """The ``--json`` object: figures, the thresholds that apply to them, flags and advice."""
        out = {"layer": self.name, "kind": self.kind, "function": self.function, "trainable": self.trainable,
               "samples": self.samples}
        for f in FIGURES:
            out[f] = _json_number(getattr(self, f))
        out["thresholds"] = {f: [{"flag": r.flag, "above" if r.above else "below": getattr(self.thresholds, r.threshold)}
                                 for r in rules_for(f)]
                             for f in FIGURES if getattr(self, f) is not None}
        out["flags"] = list(self.flags)
        out["advice"] = list(self.advice)
        return out


@dataclass(frozen=True)
class HealthReport:
    """The health of every layer at one moment."""

    layers: tuple[LayerHealth, ...]
    samples: int                       # batch size behind the figures (activation figures)
    source: str                        # "batch" (one measured batch) or "training" (live)
    step: int | None = None            # training step of the latest figures (live)
    optimizer: str = ""                # how the update ratio was measured, for people
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    notes: tuple[str, ...] = field(default=())

    def flagged(self) -> tuple[LayerHealth, ...]:
        return tuple(l for l in self.layers if l.flags)

    def layer(self, name: str) -> LayerHealth | None:
        return next((l for l in self.layers if l.name == name), None)

    def to_dict(self) -> dict:
        d = {"samples": self.samples, "source": self.source, "step": self.step, "optimizer": self.optimizer,
             "thresholds": asdict(self.thresholds), "notes": list(self.notes)}
        d["layers"] = [l.to_dict() for l in self.layers]
        return d


@dataclass(frozen=True)
class HealthAlert:
    """A flag that has just appeared on a layer (reported once, for the status bar and layer tree)."""

    layer: str
    flag: str
    step: int | None
    message: str                       # "C3_act: dead (100% of units, threshold > 50%): its units ..."


# --------------------------------------------------------------------------- judging

def _json_number(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else str(v)   # "nan"/"inf": JSON has no such numbers


def _crosses(row: LayerHealth, rule: Rule) -> bool:
    v = getattr(row, rule.figure)
    if v is None:
        return False
    v = float(v)
    if not math.isfinite(v):
        # A non-finite gradient or activation is the end of an explosion, whatever the figure.
        return rule.flag == EXPLODING and rule.above
    if rule.figure == "act_mean":
        v = abs(v)
    limit = getattr(row.thresholds, rule.threshold)
    return v > limit if rule.above else v < limit


def _advice(row: LayerHealth, flag: str) -> str:
    if flag == NOT_LEARNING and row.trainable is False:
        return FROZEN_ADVICE
    if flag == VANISHING and row.grad_norm == 0:
        return NO_GRADIENT_ADVICE
    return ADVICE[flag]


def judge(row: LayerHealth, thresholds: Thresholds | None = None) -> LayerHealth:
    """``row`` with its flags and advice set from its figures (and ``thresholds``, if given)."""
    if thresholds is not None:
        row = replace(row, thresholds=thresholds)
    raised = {r.flag for r in RULES if _crosses(row, r)}
    if row.trainable is False:
        raised.discard(VANISHING)   # no gradient is asked of a frozen layer: it is "not learning"
    flags = tuple(f for f in FLAGS if f in raised)
    return replace(row, flags=flags, advice=tuple(_advice(row, f) for f in flags))


def relative_gradients(grad_over_weight: dict[str, float]) -> dict[str, float]:
    """Each layer's ‖∇W‖/‖W‖ divided by the largest finite one in the model (vanishing is relative)."""
    finite = [v for v in grad_over_weight.values() if math.isfinite(v)]
    top = max(finite, default=0.0)
    if top <= 0:
        return {k: (0.0 if math.isfinite(v) else v) for k, v in grad_over_weight.items()}
    return {k: (v / top if math.isfinite(v) else v) for k, v in grad_over_weight.items()}


def alert_text(row: LayerHealth, flag: str) -> str:
    """One status-bar line: the layer, the flag, the figure against its threshold, what to try."""
    figures = [(r, getattr(row, r.figure)) for r in rules_for_flag(flag) if _crosses(row, r)]
    detail = ", ".join(f"{_figure_label(r.figure)} {_fmt(v, r.figure)} ({r.text(row.thresholds)})"
                       for r, v in figures)
    advice = _advice(row, flag)
    return f"{row.name}: {flag}" + (f" ({detail})" if detail else "") + f": {advice}"


def rules_for_flag(flag: str) -> tuple[Rule, ...]:
    return tuple(r for r in RULES if r.flag == flag)


FIGURE_LABELS = {
    "dead_fraction": "dead units", "saturated_fraction": "saturated", "act_mean": "mean", "act_std": "std",
    "grad_norm": "‖∇W‖", "grad_relative": "‖∇W‖/‖W‖ vs largest", "update_ratio": "‖ΔW‖/‖W‖",
}


def _figure_label(figure: str) -> str:
    return FIGURE_LABELS.get(figure, figure)


def _fmt(v, figure: str) -> str:
    if v is None:
        return "-"
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if figure in FRACTION_FIGURES:
        return f"{v:.0%}" if v in (0.0, 1.0) or v >= 0.01 else f"{v:.1%}"
    return f"{v:.3g}" if figure in ("act_mean", "act_std") else f"{v:.2g}"


def format_figure(v, figure: str) -> str:
    """How a figure is written in the table, the view and alerts."""
    return _fmt(v, figure)
