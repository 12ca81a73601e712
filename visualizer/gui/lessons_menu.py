"""The Lessons menu: the built-in lessons, the explanation panel's toggle, and lesson files.

A lecturer prepares a class by setting the window up (or opening a lesson and changing it)
and saving it with Lessons › Save lesson…: a small JSON file (``core/lessons.py``) that
Lessons › Open lesson… reads back, checked field by field as untrusted data.
"""
from __future__ import annotations

import os

from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QFileDialog, QInputDialog, QMenu, QMessageBox

from visualizer.core.errors import LoadError
from visualizer.core.lesson_catalog import LESSONS
from visualizer.core.lessons import (
    Lesson,
    LessonError,
    lesson_file_name,
    lesson_from_settings,
    read_lesson,
    write_lesson,
)

LESSON_FILTER = "Lessons (*.lesson.json *.json);;All files (*)"


class LessonsMenu:
    def __init__(self, window, runner, dock):
        self.window, self.runner, self.dock = window, runner, dock
        self.lesson_actions: dict[str, QAction] = {}
        # Alt+L would be the training panel's "&Learning rate"
        self.menu = QMenu("Lesso&ns", window)
        groups: dict[str, QMenu] = {}
        for lesson in LESSONS:
            target = self.menu
            if lesson.group:
                if lesson.group not in groups:
                    groups[lesson.group] = self.menu.addMenu(lesson.group)
                target = groups[lesson.group]
            act = target.addAction(lesson.title)
            act.setStatusTip(lesson.text.split(". ")[0] + ".")
            act.triggered.connect(lambda _c=False, les=lesson: self.runner.open(les))
            self.lesson_actions[lesson.name] = act
        self.menu.addSeparator()
        show = dock.toggleViewAction()
        show.setText("Show &explanation")
        self.menu.addAction(show)
        self.act_open = window._action("&Open lesson…", self.open_dialog, "Ctrl+L",
                                       "Open a lesson file a lecturer prepared")
        self.act_save = window._action("&Save lesson…", self.save_dialog, "Ctrl+Shift+L",
                                       "Save the current set-up as a lesson file")
        self.menu.addAction(self.act_open)
        self.menu.addAction(self.act_save)
        bar = window.menuBar()
        before = next((a for a in bar.actions() if a.text() == "&View"), None)
        if before is not None:
            bar.insertMenu(before, self.menu)
        else:
            bar.addMenu(self.menu)
        self.last_folder = ""

    # ---- files --------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open lesson", self.last_folder, LESSON_FILTER)
        if path:
            self.open_file(path)

    def open_file(self, path: str) -> Lesson | None:
        try:
            lesson = read_lesson(path)
        except LoadError as exc:
            self.window.show_message("error", f"Could not open the lesson.\n\n{exc}")
            return None
        self.last_folder = os.path.dirname(path)
        self.runner.open(lesson)
        return lesson

    def save_dialog(self) -> None:
        base = self.runner.lesson
        title, ok = QInputDialog.getText(self.window, "Save lesson", "Title of the lesson:",
                                         text=base.title if base is not None else "My lesson")
        if not ok or not title.strip():
            return
        lesson = self.current_lesson(title.strip())
        if lesson is None:
            return
        default = os.path.join(self.last_folder, lesson_file_name(lesson))
        path, _ = QFileDialog.getSaveFileName(self.window, "Save lesson", default, LESSON_FILTER)
        if not path:
            return
        if not path.endswith(".json"):
            path += ".lesson.json"     # what Open lesson and --lesson look for
            # The dialog asked about the name typed, not this one: ask before replacing it.
            if os.path.exists(path) and QMessageBox.question(
                    self.window, "Save lesson", f"{path} exists. Replace it?",
                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                    QMessageBox.StandardButton.No) != QMessageBox.StandardButton.Yes:
                return
        self.save_file(path, lesson)

    def current_lesson(self, title: str) -> Lesson | None:
        """The window's current set-up as a lesson named ``title``; None (said why) if it cannot be one."""
        w, runner = self.window, self.runner
        model, why = runner.current_model()
        if model is None:
            w.show_message("warning", f"This set-up cannot be saved as a lesson. {why}")
            return None
        c = w.controller
        spec = c.data.spec if c.data is not None else "mnist"
        limit = c.dataset_limit(spec)
        if limit is not None and limit == c.default_limit(spec):
            limit = None    # the whole set (or this window's default subset)
        name = "".join(ch if ch.isalnum() else "_" for ch in title.lower()).strip("_")[:60] or "lesson"
        try:
            lesson = lesson_from_settings(w.training_panel.values(), name=name, title=title[:80], model=model,
                                          front=runner.current_front(), layer=w.session.layer or "",
                                          limit=int(limit or 0), base=runner.lesson)
        except LessonError as exc:
            w.show_message("warning", f"This set-up cannot be saved as a lesson: {exc}")
            return None
        if why:
            w.statusBar().showMessage(why, 10000)
        return lesson

    def save_file(self, path: str, lesson: Lesson) -> bool:
        try:
            write_lesson(path, lesson)
        except (OSError, LoadError) as exc:
            self.window.show_message("error", f"Could not save the lesson.\n\n{exc}")
            return False
        self.last_folder = os.path.dirname(path)
        self.window.statusBar().showMessage(f"Saved lesson '{lesson.title}' to {path}", 8000)
        return True

