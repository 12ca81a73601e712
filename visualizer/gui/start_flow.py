"""From launch to learning in one action: what Start (and Space, when stopped) does.

- Pressed before the model is open (right after launch): the Start button says it is
  loading and training starts as soon as the model arrives; never an error dialog.
- The open model came trained from a file (the shipped sample is, at 98.7%): training it
  more changes nothing one can see. Start asks once whether to continue training it or to
  start from fresh weights, or to open the "Watch LeNet-5 learn" lesson; the answer is kept
  in the settings (Training › When the model is already trained changes it).
- The very first Start offers that lesson too, whatever model is open.

The question is a non-modal message box, so nothing blocks the event loop; tests answer it
by replacing ``ask`` (as the controller's trust question is answered).
"""
from __future__ import annotations

import os
from typing import Callable

from PyQt6.QtCore import QObject, Qt
from PyQt6.QtGui import QAction, QActionGroup
from PyQt6.QtWidgets import QCheckBox, QMenu, QMessageBox

from visualizer.core.engine.messages import LoadedModel

from .session import RUNNING, STOPPED

TRAINED_START_KEY = "training/trained_model_start"
OFFERED_KEY = "lessons/watch_it_learn_offered"
ASK, CONTINUE, FRESH, LESSON, CANCEL = "ask", "continue", "fresh", "lesson", "cancel"
CHOICES = {ASK: "&Ask each time", CONTINUE: "&Continue training it", FRESH: "Start from &fresh weights"}


def is_pretrained(model: LoadedModel) -> bool:
    """Trained weights from a file: a checkpoint, a state dict, safetensors, an archive. A model built
    here or a user's model class (file.py:Name) starts from fresh weights."""
    source = model.source or ""
    if not source or source.endswith(".py") or ":" in (model.arch or ""):
        return False
    meta = dict(model.meta)
    steps = meta.get("steps")
    return not (isinstance(steps, int) and steps == 0)


class StartFlow(QObject):
    def __init__(self, window, open_watch_lesson: Callable[[bool], None]):
        """``open_watch_lesson(start)`` opens the "Watch LeNet-5 learn" lesson (and starts it)."""
        super().__init__(window)
        self.window = window
        self.controller, self.session, self.settings = window.controller, window.session, window.settings
        self.open_watch_lesson = open_watch_lesson
        self.pending = False              # Start was pressed before the model was open
        self.pretrained = False           # the open model's weights came trained from its file
        # ask(model, offer_only) -> one of CONTINUE, FRESH, LESSON, CANCEL, or None when it answers later
        # (the message box calls ``answer``). Tests replace it.
        self.ask: Callable[[LoadedModel, bool], str | None] = self._open_question
        self.engine_model: LoadedModel | None = None   # what Start trains (a replayed run may be shown instead)
        # The engine's models, not the session's: the window may show a recorded run's model meanwhile.
        self.controller.worker.model_loaded.connect(self._on_model)
        self.controller.worker.failed.connect(self._on_failed)
        self.session.state_changed.connect(self._on_state)

    # ---- what the user pressed -------------------------------------------------------
    def request(self) -> None:
        """Start (button or Space while stopped)."""
        if self.session.training_state != STOPPED:
            return
        question = getattr(self, "question", None)
        if question is not None and question.isVisible():
            question.raise_()            # asked already: one question, one answer, one run
            question.activateWindow()
            return
        if self.session.model is None:
            self.pending = True
            self.window.training_panel.set_loading(True)
            self.window.statusBar().showMessage("The model is still loading: training starts as soon as it is open.",
                                                8000)
            return
        self._decide()

    def weights_reset(self) -> None:
        self.pretrained = False

    # ---- decisions ----------------------------------------------------------------------
    def _on_model(self, model: LoadedModel) -> None:
        self.engine_model = model
        self.pretrained = is_pretrained(model)
        if self.pending:
            self.pending = False
            self.window.training_panel.set_loading(False)
            self._decide()

    def _on_failed(self, _text: str) -> None:
        # The model that Start waited for did not open (the controller says why): nothing is
        # started later, unasked, when some other model opens.
        if self.pending:
            self.pending = False
            self.window.training_panel.set_loading(False)

    def _on_state(self, state: str) -> None:
        if state == RUNNING:
            self.pretrained = False      # trained here from now on: the user knows what it has learnt

    def remembered(self) -> str:
        value = self.settings.get(TRAINED_START_KEY, ASK, str)
        return value if value in CHOICES else ASK

    def remember(self, choice: str) -> None:
        self.settings.set(TRAINED_START_KEY, choice)
        for name, act in getattr(self, "choice_actions", {}).items():
            act.setChecked(name == choice)

    def _decide(self) -> None:
        model = self.engine_model or self.session.model
        if getattr(model, "training_refusal", ""):
            self._start()    # the controller says why this model cannot be trained; nothing to ask
            return
        first = not self.settings.get(OFFERED_KEY, False, bool)
        choice = self.remembered() if self.pretrained else CONTINUE
        if choice == ASK or first:
            self.settings.set(OFFERED_KEY, True)
            answer = self.ask(model, not self.pretrained)
            if answer is not None:
                self.answer(answer, remember=False)
            return
        self.answer(choice, remember=False)

    def answer(self, choice: str, *, remember: bool) -> None:
        """Act on the question's answer (``remember``: keep it for next time)."""
        if remember and choice in (CONTINUE, FRESH):
            self.remember(choice)
        if choice in (CONTINUE, FRESH) and self.session.training_state != STOPPED:
            return   # started meanwhile (Space on the window): one run, not a restart
        if choice == LESSON:
            if remember:
                self.remember(FRESH)     # watching it learn is starting from fresh weights
            self.open_watch_lesson(True)
        elif choice == FRESH:
            self.controller.reset_weights()   # queued before the run: the run starts from the fresh weights
            self.pretrained = False
            self._start()
        elif choice == CONTINUE:
            self._start()

    def _start(self) -> None:
        self.controller.start_training(self.window.training_config())

    # ---- the question -------------------------------------------------------------------
    def _open_question(self, model: LoadedModel, offer_only: bool) -> None:
        name = model.arch or "the model"
        if model.source:
            name += f" from {os.path.basename(model.source)}"
        acc = dict(model.meta).get("val_accuracy")
        how = f" ({100 * acc:.1f}% on held-out data)" if isinstance(acc, float) else ""
        if offer_only:
            text = ("Start training this model, or watch LeNet-5 learn real handwritten digits from random "
                    "weights, slowly enough for a class to follow (a lesson: Lessons menu)?")
        else:
            text = (f"{name} is already trained{how}: training it further changes little that you can see.\n\n"
                    "Continue training it, or start from fresh random weights to watch it learn?")
        box = QMessageBox(QMessageBox.Icon.Question, "Start training", text, QMessageBox.StandardButton.NoButton,
                          self.window)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        lesson = box.addButton("Watch LeNet-5 learn", QMessageBox.ButtonRole.AcceptRole)
        buttons = {lesson: LESSON}
        if offer_only:
            buttons[box.addButton("Start training", QMessageBox.ButtonRole.AcceptRole)] = CONTINUE
        else:
            buttons[box.addButton("Fresh weights", QMessageBox.ButtonRole.AcceptRole)] = FRESH
            buttons[box.addButton("Continue training", QMessageBox.ButtonRole.AcceptRole)] = CONTINUE
        buttons[box.addButton(QMessageBox.StandardButton.Cancel)] = CANCEL
        box.setDefaultButton(lesson)
        remember = None
        if not offer_only:
            remember = QCheckBox("Remember my answer (Training › When the model is already trained)")
            remember.setChecked(True)
            box.setCheckBox(remember)
        box.buttonClicked.connect(lambda b: self.answer(buttons.get(b, CANCEL),
                                                        remember=remember is not None and remember.isChecked()))
        self.question = box
        box.open()
        return None

    # ---- the menu -----------------------------------------------------------------------
    def add_menu(self, menu: QMenu) -> QMenu:
        sub = menu.addMenu("When the model is already &trained")
        group = QActionGroup(self)
        self.choice_actions: dict[str, QAction] = {}
        for name, title in CHOICES.items():
            act = QAction(title, self)
            act.setCheckable(True)
            act.setChecked(name == self.remembered())
            act.triggered.connect(lambda _c=False, n=name: self.remember(n))
            group.addAction(act)
            sub.addAction(act)
            self.choice_actions[name] = act
        return sub
