"""Fit a state dict's keys to a model: the prefixes that training tools add or leave out.

DataParallel and DistributedDataParallel save every key under ``module.``, ``torch.compile``
under ``_orig_mod.``, a LightningModule under the attribute that holds the network
(``model.``, ``net.``), and a model that wraps the saved network expects a prefix the file
lacks. Stripping prefixes by habit would break a model that really has a submodule called
``module``, so every candidate rule is scored against the model's own keys and the best one
wins; the keys as saved win a tie. Whether the result loads is decided afterwards by
``load_state_dict`` itself (``state_dict.load_into_new_model``), never here.

The state dict's ``_metadata`` (per-module versions, which decide for instance whether
BatchNorm's ``num_batches_tracked`` may be filled in) is renamed by the same rule, so
PyTorch sees the file's versions under the model's names.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Wrappers whose own module adds one segment in front of every key of the wrapped network.
WRAPPERS = {"module.": "DataParallel/DistributedDataParallel", "_orig_mod.": "torch.compile"}
# "Take the weights under P" candidates go this deep ("model.", "model.net."): a LightningModule
# holding the network, or a wrapper inside it.
MAX_PREFIX_DEPTH = 2
MAX_UNDER_CANDIDATES = 16
MAX_KEYS_FOR_SEARCH = 20_000   # the largest vision models have a few thousand


@dataclass(frozen=True)
class KeyRule:
    """One way of renaming keys: unwrap wrapper prefixes, keep only ``under`` (removing it), add ``add``."""

    unwrap: bool = False
    under: str = ""
    add: str = ""

    @property
    def is_identity(self) -> bool:
        return not (self.unwrap or self.under or self.add)

    def apply(self, key: str) -> tuple[str | None, tuple[str, ...]]:
        """(new key or None when the rule leaves it out, wrapper prefixes removed from it)."""
        removed: list[str] = []
        if self.unwrap:
            key = _unwrapped(key, removed)
        if self.under:
            if not key.startswith(self.under):
                return None, ()
            key = key[len(self.under):]
            if self.unwrap:
                key = _unwrapped(key, removed)
        return self.add + key, tuple(removed)


def _unwrapped(key: str, removed: list[str]) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPERS:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
                removed.append(prefix)
    return key


@dataclass(frozen=True)
class KeyFit:
    """The state dict under the rule that fits the model best, and what that rule did."""

    state_dict: OrderedDict
    rule: KeyRule
    wrappers_removed: tuple[str, ...]      # e.g. ("module.",), in the order first met
    left_out: tuple[str, ...]              # keys of the file the rule does not keep

    def rule_notes(self, holder: str = "") -> tuple[str, ...]:
        """One line per thing the rule did, for the user. ``holder`` names what ``under`` is."""
        notes = []
        for prefix in self.wrappers_removed:
            notes.append(f"removed the prefix {prefix!r} that {WRAPPERS[prefix]} adds to every key")
        if self.rule.under:
            what = f" ({holder})" if holder else ""
            notes.append(f"took the weights under {self.rule.under!r}{what} and removed that prefix")
        if self.rule.add:
            notes.append(f"added the prefix {self.rule.add!r}: the model holds the saved network under it")
        if self.left_out:
            shown = ", ".join(self.left_out[:8]) + (f" and {len(self.left_out) - 8} more"
                                                    if len(self.left_out) > 8 else "")
            notes.append(f"left out {len(self.left_out)} entr{'y' if len(self.left_out) == 1 else 'ies'} "
                         f"outside {self.rule.under!r}: {shown}")
        return tuple(notes)


def _prefix_counts(keys: Iterable[str], depth: int) -> dict[str, int]:
    """How many keys start with each prefix of up to ``depth`` segments (one pass over the keys)."""
    counts: dict[str, int] = {}
    for key in keys:
        parts = key.split(".")
        for d in range(1, min(depth, len(parts) - 1) + 1):
            prefix = ".".join(parts[:d]) + "."
            counts[prefix] = counts.get(prefix, 0) + 1
    return counts


def _common_prefixes(keys: list[str]) -> list[str]:
    """Prefixes (up to MAX_PREFIX_DEPTH segments) that every one of ``keys`` starts with."""
    if not keys:
        return []
    found = []
    for d in range(1, MAX_PREFIX_DEPTH + 1):
        first = keys[0].split(".")
        if len(first) <= d:
            break
        prefix = ".".join(first[:d]) + "."
        if not all(k.startswith(prefix) for k in keys):
            break
        found.append(prefix)
    return found


def candidate_rules(saved: list[str], expected: list[str]) -> list[KeyRule]:
    """Every rule worth scoring, the identity first. Bounded: "under" prefixes must hold at least
    half as many keys as the model has (a rule keeping fewer can never load)."""
    need = max(1, len(expected) // 2)
    adds = [""] + _common_prefixes(expected)
    rules: list[KeyRule] = []
    if len(saved) > MAX_KEYS_FOR_SEARCH:
        # Far more keys than any real network has: score only the cheap rules, so a crafted
        # file cannot make the search take minutes.
        return [KeyRule(unwrap=u, add=a) for u in (False, True) for a in adds]
    for unwrap in (False, True):
        keys = saved if not unwrap else [_unwrapped(k, []) for k in saved]
        # A prefix holding a wrapper segment ("module.", "model.module.") is reached by a shorter
        # one plus unwrapping, whose note says what the wrapper was.
        counts = {p: n for p, n in _prefix_counts(keys, MAX_PREFIX_DEPTH).items()
                  if not any(f"{segment}." in WRAPPERS for segment in p.split(".")[:-1])}
        # The fullest prefixes only: a file with thousands of distinct prefixes must not take
        # thousands of passes over its keys.
        ranked = sorted((p for p, n in counts.items() if n >= need), key=lambda p: (-counts[p], p))
        unders = [""] + ranked[:MAX_UNDER_CANDIDATES]
        for under in unders:
            for add in adds:
                rules.append(KeyRule(unwrap=unwrap, under=under, add=add))
    return rules


def _renamed_metadata(metadata: Mapping, rule: KeyRule) -> OrderedDict:
    """The per-module metadata under the rule's names (a module path is a key without its leaf)."""
    out: OrderedDict = OrderedDict()
    for path, value in metadata.items():
        new, _ = rule.apply(f"{path}." if path else "")
        if new is None:
            continue
        new = new[:-1] if new.endswith(".") else new
        out.setdefault(new, value)
    return out


def fit_keys(model_state: Mapping, sd: Mapping) -> KeyFit:
    """The rule under which ``sd`` matches most of ``model_state`` (name and shape); the identity on a tie."""
    saved = list(sd)
    expected = list(model_state)
    shapes = {k: tuple(getattr(v, "shape", ())) for k, v in model_state.items()}
    best = None
    seen: set[tuple[str, ...]] = set()
    for rule in candidate_rules(saved, expected):
        renamed = [rule.apply(k)[0] for k in saved]
        signature = tuple(k or "" for k in renamed)
        if signature in seen:
            continue
        seen.add(signature)
        same_shape = same_name = 0
        for old, new in zip(saved, renamed):
            if new is not None and new in shapes:
                same_name += 1
                same_shape += tuple(getattr(sd[old], "shape", ())) == shapes[new]
        score = (same_shape, same_name)
        if best is None or score > best[0]:
            best = (score, rule)
    rule = best[1] if best is not None else KeyRule()
    out: OrderedDict = OrderedDict()
    removed: list[str] = []
    left_out: list[str] = []
    for key, value in sd.items():
        new, wrappers = rule.apply(key)
        if new is None:
            left_out.append(key)
            continue
        out[new] = value
        removed.extend(w for w in wrappers if w not in removed)
    metadata = getattr(sd, "_metadata", None)
    if metadata is not None:
        out._metadata = _renamed_metadata(metadata, rule)
    return KeyFit(state_dict=out, rule=rule, wrappers_removed=tuple(removed), left_out=tuple(left_out))
