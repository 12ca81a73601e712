"""The main window's actions, shortcuts and menus (one place for every keyboard shortcut), and Help.

A mixin of ``MainWindow``: actions are added to the window itself, so their shortcuts work
even when the menu bar is hidden (presentation mode).
"""
from __future__ import annotations

from typing import Callable

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QActionGroup, QKeySequence
from PyQt6.QtWidgets import QDockWidget, QMessageBox


class WindowMenus:
    def _action(self, text: str, slot: Callable, shortcut=None, tip: str = "", checkable=False) -> QAction:
        act = QAction(text, self)
        if shortcut:
            seqs = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
            act.setShortcuts([QKeySequence(s) for s in seqs])
        if tip:
            act.setStatusTip(tip)
        act.setCheckable(checkable)
        act.triggered.connect(lambda checked=False: slot(checked) if checkable else slot())
        self.addAction(act)  # window-wide shortcuts even when the menu bar is hidden
        self.shortcut_actions.append(act)
        return act

    def _build_actions(self) -> None:
        self.shortcut_actions: list[QAction] = []
        c = self.controller
        A = self._action
        self.act_open = A("&Open model…", self.open_dialog, QKeySequence.StandardKey.Open,
                          "Open a checkpoint, a state dict, a model .py file or an ONNX model (inspection only)")
        self.act_sample = A("Open &sample model", c.open_sample, "Ctrl+Shift+O")
        self.act_open_image = A("Open &image as input…", self.open_image_dialog, "Ctrl+I")
        self.act_open_run = A("Open r&un…", self.open_run_dialog, "Ctrl+Shift+U",
                              "Replay a recorded training run (.cnnviz): scrub to any step")
        self.act_attach = A("&Attach to live run…", self.attach_dialog, "Ctrl+Shift+A",
                            "Watch a training script that records with serve=host:port")
        self.act_run_prev = A("Previous snapshot of the run", lambda: self.replay.step_by(-1), "Alt+Left")
        self.act_run_next = A("Next snapshot of the run", lambda: self.replay.step_by(+1), "Alt+Right")
        self.act_run_play = A("Play / pause the run", self.replay.toggle_play, "Alt+Space")
        self.act_pin = A("&Pin what is shown as A", self.pin_shown, "Ctrl+Shift+P",
                         "Then open another checkpoint, run or step (B) and compare")
        self.compare_actions: dict[str, QAction] = {}
        compare_group = QActionGroup(self)
        for mode, title in (("B", "Show &B (what comes)"), ("A", "Show &A (pinned)"), ("B - A", "Show B &− A")):
            act = A(title, lambda checked, m=mode: self.controller.set_compare(m), checkable=True)
            compare_group.addAction(act)
            self.compare_actions[mode] = act
        self.compare_actions["B"].setChecked(True)
        self.act_save = A("&Save checkpoint…", self.save_dialog, QKeySequence.StandardKey.Save)
        self.act_export_png = A("Export view as &PNG…", lambda: self.export_dialog("png"), "Ctrl+E")
        self.act_export_svg = A("Export view as S&VG…", lambda: self.export_dialog("svg"), "Ctrl+Shift+E")
        self.act_export_csv = A("Export &CSV (curves, gradients)…", lambda: self.export_dialog("csv"), "Ctrl+Alt+E")
        self.act_copy = A("&Copy view to clipboard", self.copy_view, "Ctrl+Shift+C")
        self.act_quit = A("&Quit", self.close, QKeySequence.StandardKey.Quit)

        self.act_run = A("&Start training", self.toggle_run, "Space", "Start, pause or resume training")
        self.act_step = A("S&tep one batch", c.step, "Ctrl+Right")
        self.act_stop = A("St&op training", c.stop, "Ctrl+.")
        self.act_reset = A("&Reset weights", c.reset_weights, "Ctrl+Shift+R")

        self.act_prev_layer = A("Previous layer", lambda: self.move_layer(-1), "Ctrl+Up")
        self.act_next_layer = A("Next layer", lambda: self.move_layer(+1), "Ctrl+Down")
        self.act_presentation = A("&Presentation mode", self.set_presentation, "F11",
                                  "Full screen, large fonts, thick lines, high contrast", checkable=True)
        self.theme_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for i, (name, title) in enumerate((("dark", "&Dark"), ("light", "&Light"), ("high_contrast", "&High contrast"))):
            act = A(f"{title} theme", lambda checked, n=name: self.set_theme(n), f"Ctrl+Shift+{i + 1}",
                    checkable=True)
            group.addAction(act)
            self.theme_actions[name] = act
        self.act_reset_layout = A("Reset &layout", self.reset_layout)
        self.device_actions: dict[str, QAction] = {}
        dev_group = QActionGroup(self)
        for name in ("cpu", "cuda"):
            act = A(name.upper(), lambda checked, n=name: None, checkable=True)
            dev_group.addAction(act)
            self.device_actions[name] = act
        self.device_actions["cpu"].setChecked(True)
        self.act_shortcuts = A("&Keyboard shortcuts", self.show_shortcuts, "F1")
        self.act_about = A("&About", self.show_about)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        for a in (self.act_open, self.act_sample):
            f.addAction(a)
        f.addAction(self.act_open_run)
        f.addAction(self.act_attach)
        self.recent_menu = f.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        f.addAction(self.act_open_image)
        f.addSeparator()
        f.addAction(self.act_save)
        f.addSeparator()
        for a in (self.act_export_png, self.act_export_svg, self.act_export_csv, self.act_copy):
            f.addAction(a)
        f.addSeparator()
        f.addAction(self.act_quit)

        t = self.training_menu = mb.addMenu("&Training")
        for a in (self.act_run, self.act_step, self.act_stop, self.act_reset):
            t.addAction(a)
        dev = t.addMenu("&Device")
        for a in self.device_actions.values():
            dev.addAction(a)

        v = mb.addMenu("&View")
        v.addAction(self.act_prev_layer)
        v.addAction(self.act_next_layer)
        v.addSeparator()
        cmp_menu = v.addMenu("&Compare")
        cmp_menu.addAction(self.act_pin)
        for a in self.compare_actions.values():
            cmp_menu.addAction(a)
        v.addSeparator()
        v.addAction(self.act_presentation)
        for a in self.theme_actions.values():
            v.addAction(a)
        v.addSeparator()
        panels = v.addMenu("&Panels")
        for dock in self.findChildren(QDockWidget):
            panels.addAction(dock.toggleViewAction())
        v.addAction(self.act_reset_layout)

        h = mb.addMenu("&Help")
        h.addAction(self.act_shortcuts)
        h.addAction(self.act_about)

    def show_shortcuts(self) -> None:
        from .dialogs import ShortcutsDialog
        dlg = ShortcutsDialog(self.shortcut_actions, self)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.open()

    def show_about(self) -> None:
        QMessageBox.about(self, "About CNN Visualizer",
                          "Watch a convolutional neural network work: feature maps, filters, pooling, "
                          "activations and gradients, live while it trains.")
