"""Top dataset patches of one conv layer, accumulated from the training run's own forward passes.

While the viewer looks at a conv layer's top patches during training, every training step's
batch output of that layer is folded into a ``TopPatchAccumulator`` (per channel, the best 9
(score, image, position) of the training images seen so far), so no separate pass over the
data is needed: after an epoch, every training image has been looked at. Only while some
layer is wanted (``want(layer)``) does anything happen: the hook is registered for that one
module then and removed when the wish changes or the run ends.

Why its own forward hook and not the probe's batch observer: the probe is armed only on the
steps a snapshot is due (a few a second), which would see a small share of the data. One
channel-wise maximum of one layer's batch is cheap, but not free next to a tiny model's step
(LeNet-5's C1: ~0.3 ms against a 7 ms step), so the hook keeps to a budget like the snapshot
pacer's: it skips a batch while its time so far exceeds ``FEED_BUDGET`` of the time since it
started; a big model's batches are all looked at, a tiny model's every few steps (each epoch
shuffles, so every image is seen in time; ``searched`` counts the distinct images seen).
The hook feeds only training steps: the model in train mode with gradients on, and a batch
the trainer has not fed before (the health check's batch, the probe and the validation
passes are not training images at those positions).

Augmented training batches are not the stored images, so their patches could not be cut
out of them: with augmentation on, nothing is accumulated and the viewer is told why.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from ..errors import ModelError
from ..snapshot import TrainingSnapshot

MIN_INTERVAL_S = 1.0     # a live result at most once a second...
RESULT_BUDGET = 0.02     # ...and cutting out the patches takes at most 2% of training time
FEED_BUDGET = 0.01       # looking at the batches takes at most 1% of training time (as snapshots do)


class LivePatches:
    """See the module docstring. Lives in the engine's thread, beside the Trainer."""

    def __init__(self, trainer, emit: Callable[[str, Any], None]):
        from ..channels.top_patches import ImageSource
        self._trainer = trainer
        self._emit = emit
        self._source = ImageSource.from_split(trainer.data, "train")
        self._augmented = getattr(trainer.data.train, "augment", None) is not None
        self.layer: str | None = None    # the layer accumulated for now
        self._wish: str | None = None    # the layer last asked for
        self._acc = None
        self._field = None
        self._handle = None
        self._fed = None                 # the batch (trainer.batch_positions) last looked at
        self._seen = np.zeros(len(self._source), bool)
        self._last_step = -1
        self._last_emit = float("-inf")
        self._emitted_seen = -1
        self._cost = 0.0
        self._spent = 0.0                # seconds the hook spent feeding since it started
        self._since = 0.0                # when it started (perf_counter)

    # ------------------------------------------------------------------ the wish
    def want(self, layer: str | None) -> None:
        """Accumulate for ``layer`` from now on (None: for none); a new layer starts empty."""
        if layer == self._wish:
            return   # also a wish that could not be met: said once, not at every step
        self._wish = layer
        self._stop()
        if layer is None:
            return
        try:
            self._start(layer)
            self.layer = layer
        except ModelError as exc:
            self._stop()
            self._emit("notice", f"Top patches of {layer} cannot follow training: {exc}")

    def _start(self, layer: str) -> None:
        import torch.nn as nn

        from ..channels.receptive_field import receptive_field
        from ..channels.top_patches import TopPatchAccumulator
        if self._augmented:
            raise ModelError("the training images are augmented, so the patches that excited a channel are "
                             "not the stored images; pause and press Find top patches, or train without augmentation")
        model = self._trainer.model
        try:
            module = model.get_submodule(layer)
        except AttributeError:
            raise ModelError(f"the model has no layer {layer!r}") from None
        if not isinstance(module, nn.modules.conv._ConvNd) or module.weight.dim() != 4:
            raise ModelError("it is not a 2-D conv layer")
        # Traced on a blank image in eval mode without gradients: the run's weights and statistics are untouched.
        self._field = receptive_field(model, self._trainer.bundle.input_shape, layer)
        self._acc = TopPatchAccumulator(layer, int(module.out_channels))
        self._seen[:] = False
        self._emitted_seen = -1
        self._spent, self._since = 0.0, time.perf_counter()
        self._fed = self._trainer.batch_positions   # stepped before the hook existed: not a batch to feed
        self._handle = module.register_forward_hook(self._observe)

    def _stop(self) -> None:
        if self._handle is not None:
            self._handle.remove()
        self._handle = self._acc = self._field = None
        self.layer = None

    # ------------------------------------------------------------------ feeding
    def _observe(self, module, _args, out) -> None:
        import torch

        from ..introspect import first_tensor
        positions = self._trainer.batch_positions
        if not module.training or not torch.is_grad_enabled() or positions is self._fed or self._acc is None:
            return
        t = first_tensor(out)
        if t is None or t.dim() != 4 or t.shape[0] != len(positions):
            return
        self._fed = positions               # seen or skipped, this batch's positions are used up
        t0 = time.perf_counter()
        if self._spent > FEED_BUDGET * (t0 - self._since):
            return                          # over budget: this batch goes by unseen
        self._acc.feed(t.detach(), positions)
        self._seen[positions] = True
        self._spent += time.perf_counter() - t0

    def after_snapshot(self, snap: TrainingSnapshot) -> None:
        """Between two steps: the result so far, when there is news and it is time."""
        if snap.step < self._last_step and self._acc is not None:
            self._acc.reset()               # fresh weights mid-run: the old scores are another model's
            self._seen[:] = False
        self._last_step = snap.step
        acc = self._acc
        if acc is None or acc.seen == 0 or acc.seen == self._emitted_seen:
            return   # nothing looked at yet, or nothing new
        now = time.monotonic()
        if now - self._last_emit < max(MIN_INTERVAL_S, self._cost / RESULT_BUDGET):
            return
        self._emit_result()

    def _emit_result(self) -> None:
        from dataclasses import replace
        t0 = time.perf_counter()
        acc = self._acc
        result = acc.result(self._source, self._field, total=len(self._source))
        # "searched": the training images looked at so far (an image seen in two epochs counts once).
        result = replace(result, searched=int(np.count_nonzero(self._seen)))
        self._cost = time.perf_counter() - t0
        self._last_emit = time.monotonic()
        self._emitted_seen = acc.seen
        self._emit("live_top_patches", result)

    def finish(self) -> None:
        """The run ended: send what was accumulated since the last result, then remove the hook."""
        if self._acc is not None and self._acc.seen != self._emitted_seen:
            self._emit_result()
        self._stop()
