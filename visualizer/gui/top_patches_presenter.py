"""The Top patches view's life in the window: what each channel of the selected conv layer looks for.

- "Find top patches" asks the engine for the ``top_patches`` analysis of the selected layer
  over the training split (the most images, and the ones live accumulation sees, so both give
  the same answer for the same weights): it runs in the engine's thread, reports its progress
  (the view's bar) and stops at the next batch on Cancel, answering with what it found so far.
- While training runs, the engine accumulates the selected conv layer's top patches from the
  training passes themselves (``core/engine/live_patches.py``), but only while this view is
  on screen: nothing is computed for a view nobody looks at. A search is not offered then
  (it would hold training up); pausing offers it again.
- Clicking a patch makes its image the input (``Controller.use_sample`` with the image's
  index in its split), and the Input panel says where it came from.
"""
from __future__ import annotations

from PyQt6.QtCore import QObject

CONV_KINDS = ("conv", "depthwise_conv")
SEARCHED_SPLIT = "train"
WHILE_TRAINING = ("While training runs, the top patches of the selected conv layer follow the training batches; "
                  "pause or stop training to search the whole data set")


class TopPatchesPresenter(QObject):
    def __init__(self, window, view, dock):
        super().__init__(window)
        self.window = window
        self.view = view
        self.dock = dock
        self.controller = window.controller
        self.session = window.session
        self._request: int | None = None
        self.watching: str | None = None      # the layer the engine accumulates for (None: none)
        c, s = self.controller, self.session
        view.search_requested.connect(self.search)
        view.cancel_requested.connect(self.cancel)
        view.patch_selected.connect(self._on_patch)
        c.analysis_ready.connect(self._on_analysis)
        c.analysis_progress.connect(self._on_progress)
        c.live_top_patches.connect(self._on_live)
        s.model_changed.connect(self._on_model)
        s.layer_changed.connect(self.update)
        s.state_changed.connect(self.update)
        # The dock says when its tab comes to the front or goes behind another (the widget's own
        # isVisible() may not have changed yet when it does).
        self._on_screen = view.isVisible()
        dock.visibilityChanged.connect(self._on_visibility)
        self.update()

    # ---- searching ---------------------------------------------------------------------
    def search(self, layer: str) -> None:
        if self._request is not None or self._blocked_reason() is not None:
            return
        self.controller.end_external()   # a replayed run was shown: the search is of the open model
        self._request = self.controller.request_analysis("top_patches", layer=layer, split=SEARCHED_SPLIT)

    def cancel(self) -> None:
        if self._request is not None:
            self.controller.cancel_analysis(self._request)

    def _on_progress(self, p) -> None:
        if p.kind == "top_patches" and p.request_id == self._request:
            self.view.set_progress(p.done, p.total)

    def _on_analysis(self, result) -> None:
        if result.kind != "top_patches" or result.request_id != self._request:
            return
        self._request = None
        if result.error:
            cancelled = result.error == "cancelled"   # cancelled before its first batch
            self.view.search_failed("Search cancelled." if cancelled else f"The search could not run: {result.error}")
        else:
            self.view.set_patches(result.record)
        self.update()

    # ---- following training ------------------------------------------------------------
    def _on_live(self, result) -> None:
        if result.layer == self.watching and self._request is None:
            self.view.set_patches(result)

    def _on_visibility(self, visible: bool) -> None:
        self._on_screen = bool(visible)
        self.update()

    def update(self, *_args) -> None:
        """Tell the engine which layer to follow, and the view whether it may search now."""
        layer = self._conv_layer()
        watch = layer if layer is not None and self._on_screen and not self._refusal() else None
        if watch != self.watching:
            self.watching = watch
            self.controller.watch_top_patches(watch)
        self.view.set_search_blocked(self._blocked_reason())
        running = self.session.training_state == "running"
        self.view.set_placeholder(f"Following training: the top patches of {watch} appear as the training batches "
                                  "go by." if watch and running else None)

    def _conv_layer(self) -> str | None:
        model, name = self.session.model, self.session.layer
        if model is None or name is None:
            return None
        info = next((li for li in model.info.layers if li.name == name), None)
        if info is None or info.kind not in CONV_KINDS or getattr(info, "functional", False):
            return None
        return name

    def _refusal(self) -> str:
        return getattr(self.session.model, "training_refusal", "") or ""

    def _blocked_reason(self) -> str | None:
        if self.session.model is None:
            return "Open a model first"
        if self._refusal():
            return "Top patches need the PyTorch model (its hooks): not available for an ONNX model"
        if self._conv_layer() is None:
            return "Top patches are found for conv layers (modules): pick one in the layer tree"
        if self.session.training_state == "running":
            return WHILE_TRAINING
        return None

    def _on_model(self, _model) -> None:
        self._request = None     # an answer still coming is about the model before
        self.update()

    # ---- a patch becomes the input -------------------------------------------------------
    def _on_patch(self, index: int, split: str) -> None:
        data = self.controller.data
        probe_split = "val" if data is not None and data.n_val else "train"
        self.controller.use_sample(index, split)
        panel = self.window.input_panel
        if split in ("", probe_split):
            panel.set_index(index)   # the Input panel's own sample: prev/next go on from it
        layer = self.view.result.layer if self.view.result is not None else ""
        panel.set_note(f"Top patch of {layer}: image {index} of the {'training' if split == 'train' else split or 'probe'} "
                       "split")
