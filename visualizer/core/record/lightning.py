"""A Lightning callback that records a ``lightning.Trainer``'s run like :class:`Recorder` does a plain loop.

    trainer = lightning.Trainer(callbacks=[RecorderCallback("runs/exp.cnnviz", probe=(x[:1], y[:1]))])

Gradients are taken in ``on_before_optimizer_step``: once per optimizer step, after gradient
accumulation and after AMP unscaling (``on_after_backward`` would see scaled gradients, and
once per micro-batch). The snapshot itself is made after the optimizer's step (the
Recorder's optimizer hook), the loss of each batch in ``on_train_batch_end``. Only global
rank 0 records. Needs the ``lightning`` extra: ``pip install "cnn-visualizer[lightning]"``.
"""
from __future__ import annotations

try:
    import lightning.pytorch as pl
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError('the Lightning callback needs Lightning: pip install "cnn-visualizer[lightning]"') from exc

import torch

from .recorder import Recorder


class RecorderCallback(pl.Callback):
    """``path``, ``probe`` and every other keyword go to :class:`Recorder` (``optimizer`` is the trainer's)."""

    def __init__(self, path, probe, **recorder_options):
        super().__init__()
        self.path = path
        self.probe = probe
        self.options = recorder_options
        self.recorder: Recorder | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or self.recorder is not None:
            return
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        total = int(trainer.estimated_stepping_batches) if trainer.max_steps != 0 else 0
        self.recorder = Recorder(pl_module, self.path, probe=self._probe_on(pl_module), optimizer=optimizer,
                                 total_steps=total if total < 2**31 else 0, ranks=(trainer.global_rank,),
                                 **self.options)

    def _probe_on(self, pl_module):
        images, *rest = self.probe if isinstance(self.probe, (tuple, list)) else (self.probe,)
        images = torch.as_tensor(images).to(pl_module.device)
        return (images, rest[0]) if rest else images

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self.recorder is not None:
            self.recorder.capture(trainer.global_step + 1, epoch=trainer.current_epoch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.recorder is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self.recorder.note(trainer.global_step, loss if isinstance(loss, torch.Tensor) else None,
                           epoch=trainer.current_epoch)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.recorder is None:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if isinstance(v, (int, float, torch.Tensor)) and getattr(v, "numel", lambda: 1)() == 1}
        figures = {key: metrics[name] for key, name in (("train_loss", "train_loss"), ("val_loss", "val_loss"),
                                                         ("val_accuracy", "val_acc"), ("train_accuracy", "train_acc"))
                   if name in metrics}
        self.recorder.epoch_end(trainer.current_epoch, trainer.global_step, **figures)

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self.recorder is not None:
            self.recorder.event("failed", trainer.global_step, f"{type(exception).__name__}: {exception}")
            self.recorder.close()

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self.recorder is not None:
            self.recorder.close()

    def state_dict(self) -> dict:
        return {"path": str(self.path)}
