"""The main window's file actions: open (models, images, recent files), save, export, copy, drag and drop.

A mixin of ``MainWindow`` (it uses the window's controller, session, settings and views).
"""
from __future__ import annotations

import os

from PyQt6.QtWidgets import QFileDialog

from visualizer.core.errors import LoadError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
MODEL_FILTER = ("Models (*.pt *.pth *.ckpt *.bin *.safetensors *.pt2 *.onnx *.py);;ONNX models (*.onnx);;"
                "Lightning checkpoints (*.ckpt);;All files (*)")
IMAGE_FILTER = "Images (" + " ".join("*" + s for s in IMAGE_SUFFIXES) + ");;All files (*)"


class WindowFiles:
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", MODEL_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        if path.lower().endswith(IMAGE_SUFFIXES):
            return self.open_image(path)
        if path.lower().endswith(".cnnviz"):
            return self.open_run(path)
        return self.controller.open_path(path)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for p in files:
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda _=False, p=p: self.open_path(p))
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self.settings.clear_recent)

    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image as input", "", IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_image(self, path: str) -> bool:
        """Use an image file as the probe input; the engine fits it to the model (the note says how)."""
        from visualizer.core.images import channel_note, load_image, resize_note
        model = self.session.model
        if model is None:
            self.show_message("warning", "Open a model first.")
            return False
        try:
            loaded = load_image(path)
        except LoadError as exc:
            self.show_message("error", f"Could not open the image.\n\n{exc}")
            return False
        h, w, c = loaded.array.shape
        C, H, W = model.input_shape
        notes = [n for n in (channel_note(c, C), resize_note((h, w), (H, W))) if n]
        via = None
        native = getattr(self.controller.data, "native_shape", None)
        if native and 0 < native[1] * native[2] < H * W:
            # the model learnt from upscaled small images: the image passes through that size too
            via = (native[1], native[2])
            notes.append(f"seen at the training data's {native[2]}×{native[1]} first")
        note = "; ".join((*loaded.notes, *notes)) or "used as is"
        self.input_panel.set_note(f"{os.path.basename(path)}: {note}")
        self.controller.use_image(loaded.array.transpose(2, 0, 1), None, f"Input: {os.path.basename(path)} ({note})",
                                  via=via)
        return True

    def save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", "model.pt", "Checkpoints (*.pt)")
        if path:
            self.controller.save(path)

    def export_dialog(self, kind: str) -> None:
        view = self.current_view
        if kind == "csv" and (view is None or view.csv_table() is None):
            view = self.curves or view  # the current view has no table: the curves always do
        if view is None:
            return
        suffix = {"png": "PNG images (*.png)", "svg": "SVG drawings (*.svg)", "csv": "CSV tables (*.csv)"}[kind]
        default = f"{view.title.lower().replace(' ', '_')}.{kind}"
        path, _ = QFileDialog.getSaveFileName(self, f"Export {view.title}", default, suffix)
        if path:
            self.export_view(view, kind, path)

    def export_view(self, view, kind: str, path: str) -> bool:
        try:
            if kind == "png":
                view.export_png(path)
            elif kind == "svg":
                view.export_svg(path)
            elif not view.export_csv(path):
                self.show_message("info", f"{view.title} has no table to export.")
                return False
        except (OSError, ValueError) as exc:
            self.show_message("error", f"Could not export: {exc}")
            return False
        self.statusBar().showMessage(f"Exported {path}", 5000)
        return True

    def copy_view(self) -> None:
        if self.current_view is not None:
            self.current_view.copy_to_clipboard()
            self.statusBar().showMessage(f"{self.current_view.title} copied to the clipboard", 4000)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.open_path(urls[0])
