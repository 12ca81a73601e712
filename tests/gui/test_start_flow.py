"""From launch to learning in one action: Start before the model is open, and the trained-model question."""
from __future__ import annotations

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QMessageBox

from tests.gui.test_main_window import LIMIT, WAIT, open_window
from visualizer.core.lesson_catalog import WATCH_IT_LEARN
from visualizer.gui.controller import Controller
from visualizer.gui.main_window import MainWindow
from visualizer.gui.session import RUNNING, STOPPED
from visualizer.gui.settings import Settings
from visualizer.gui.start_flow import CONTINUE, FRESH, LESSON, OFFERED_KEY, TRAINED_START_KEY


@pytest.fixture
def settings(tmp_path):
    s = Settings(tmp_path / "settings.ini")
    s.set(OFFERED_KEY, True)      # the first-start offer has been made (tested on its own below)
    return s


def stop(qtbot, w) -> None:
    w.controller.stop()
    qtbot.waitUntil(lambda: w.session.training_state == STOPPED, timeout=WAIT)


def unopened_window(qtbot, settings) -> MainWindow:
    """A shown window whose engine has opened nothing yet; its trained-model question says Continue."""
    w = MainWindow(settings, controller=Controller(settings, sample_limit=LIMIT))
    qtbot.addWidget(w)
    w.start_flow.ask = lambda model, offer_only: CONTINUE
    w.show()
    return w


def test_space_before_the_model_is_open_starts_training_once_it_is(qtbot, settings):
    w = unopened_window(qtbot, settings)
    try:
        assert w.session.model is None
        w.act_run.trigger()                       # Space right after launch
        panel = w.training_panel
        assert panel.start_button.text() == "Loading…" and not panel.start_button.isEnabled()
        assert w.last_message is None             # no error dialog
        w.start()                                 # the sample model arrives only now
        qtbot.waitUntil(lambda: w.session.training_state == RUNNING and w.session.latest_training is not None,
                        timeout=WAIT)
        assert panel.start_button.text() == "Start" and w.last_message is None
        stop(qtbot, w)
    finally:
        w.close()


def test_a_controller_asked_to_train_before_a_model_waits_for_one(qtbot, settings):
    controller = Controller(settings, sample_limit=LIMIT)
    said = []
    controller.message.connect(lambda level, text: said.append((level, text)))
    controller.start()
    try:
        controller.start_training()               # e.g. --train, before anything is open
        assert said == [] and controller.session.training_state == STOPPED
        controller.open_sample()
        qtbot.waitUntil(lambda: controller.session.latest_training is not None, timeout=WAIT)
        assert controller.session.training_state == RUNNING and said == []
        controller.stop()
        qtbot.waitUntil(lambda: controller.session.training_state == STOPPED, timeout=WAIT)
    finally:
        controller.shutdown()


def first_accuracy(qtbot, w) -> float:
    qtbot.waitUntil(lambda: w.session.latest_training is not None, timeout=WAIT)
    return w.session.latest_training.accuracy


def test_a_trained_model_asks_once_fresh_weights_are_fresh_and_the_answer_is_kept(qtbot, settings):
    w = open_window(qtbot, settings)
    w.start_flow.ask = w.start_flow._open_question      # the real question
    try:
        assert w.start_flow.pretrained                  # the sample: 98.7% on held-out digits
        w.act_run.trigger()
        box = w.start_flow.question
        assert isinstance(box, QMessageBox) and box.isVisible() and "already trained" in box.text()
        buttons = {b.text(): b for b in box.buttons()}
        assert set(buttons) >= {"Watch LeNet-5 learn", "Fresh weights", "Continue training"}
        assert box.checkBox() is not None and box.checkBox().isChecked()
        assert w.session.training_state == STOPPED     # nothing starts until answered
        buttons["Fresh weights"].click()
        assert first_accuracy(qtbot, w) < 0.5           # random weights: about one in ten right
        assert settings.get(TRAINED_START_KEY, "", str) == FRESH
        assert w.start_flow.choice_actions[FRESH].isChecked()
        stop(qtbot, w)
        # The trained sample again: no question this time, fresh weights straight away.
        w.start_flow.question = None
        w.controller.open_sample()
        qtbot.waitUntil(lambda: w.start_flow.pretrained and w.session.latest_probe is not None, timeout=WAIT)
        w.session.clear_history()
        w.act_run.trigger()
        assert w.start_flow.question is None
        assert first_accuracy(qtbot, w) < 0.5
        stop(qtbot, w)
    finally:
        w.close()


def test_continue_keeps_the_trained_weights(qtbot, settings):
    w = open_window(qtbot, settings)
    asked = []
    w.start_flow.ask = lambda model, offer_only: asked.append(offer_only) or CONTINUE
    try:
        w.act_run.trigger()
        assert asked == [False]
        assert first_accuracy(qtbot, w) > 0.8            # the sample keeps what it knows
        stop(qtbot, w)
    finally:
        w.close()


def test_the_first_start_offers_watching_lenet5_learn(qtbot, tmp_path):
    settings = Settings(tmp_path / "first.ini")          # never started before
    w = open_window(qtbot, settings)
    asked = []
    w.start_flow.ask = lambda model, offer_only: asked.append(offer_only) or LESSON
    try:
        w.controller.rebuild("lenet5", {})              # a fresh model: not the trained-model question
        qtbot.waitUntil(lambda: w.session.model is not None and w.session.model.source is None
                        and not w.start_flow.pretrained, timeout=WAIT)
        w.act_run.trigger()
        assert asked == [True]                          # only an offer: the model is fresh
        qtbot.waitUntil(lambda: w.lesson_runner.lesson is WATCH_IT_LEARN and w.session.training_state == RUNNING
                        and w.session.latest_training is not None
                        and abs(w.session.latest_training.lr - 0.003) < 1e-12, timeout=WAIT)
        assert w.training_panel.speed.currentData() == 20.0
        assert settings.get(OFFERED_KEY, False, bool)
        stop(qtbot, w)
        w.act_run.trigger()                             # not offered a second time
        assert asked == [True]
        stop(qtbot, w)
    finally:
        w.close()


def test_the_training_menu_sets_the_kept_answer(qtbot, settings):
    w = open_window(qtbot, settings)
    try:
        w.start_flow.choice_actions[CONTINUE].trigger()
        assert settings.get(TRAINED_START_KEY, "", str) == CONTINUE
        w.start_flow.ask = lambda model, offer_only: pytest.fail("asked although the answer is kept")
        w.act_run.trigger()
        assert first_accuracy(qtbot, w) > 0.8
        stop(qtbot, w)
    finally:
        w.close()


def test_start_again_while_the_question_is_open_asks_nothing_more_and_starts_one_run(qtbot, settings):
    w = open_window(qtbot, settings)
    w.start_flow.ask = w.start_flow._open_question      # the real question
    try:
        w.act_run.trigger()
        box = w.start_flow.question
        assert box is not None and box.isVisible()
        w.start_flow.request()                          # Start pressed again: the same question, raised
        assert w.start_flow.question is box
        assert len([b for b in w.findChildren(QMessageBox) if b.isVisible()]) == 1
        buttons = {b.text(): b for b in box.buttons()}
        buttons["Continue training"].click()
        qtbot.waitUntil(lambda: w.session.training_state == RUNNING, timeout=WAIT)
        # An answer arriving while the run goes on (a second box, had there been one) starts nothing.
        qtbot.waitUntil(lambda: w.session.latest_training is not None, timeout=WAIT)
        step = w.session.latest_training.step
        w.start_flow.answer(FRESH, remember=False)      # fresh weights would start a new run
        qtbot.wait(500)
        assert w.session.training_state == RUNNING
        latest = w.session.latest_training
        assert latest is not None and latest.step >= step and latest.accuracy > 0.5   # the same run goes on
        stop(qtbot, w)
    finally:
        w.close()


def test_a_start_waiting_for_a_model_that_fails_to_open_starts_nothing_later(qtbot, settings, tmp_path):
    w = unopened_window(qtbot, settings)
    controller = w.controller
    try:
        bad = tmp_path / "broken.pt"
        bad.write_bytes(b"not a checkpoint")
        w.act_run.trigger()                       # Start while nothing is open yet
        assert w.training_panel.start_button.text() == "Loading…"
        controller.start()
        w.open_path(str(bad))                     # the model Start waits for does not open
        qtbot.waitUntil(lambda: w.last_message is not None and w.last_message[0] == "error", timeout=WAIT)
        assert str(bad) in w.last_message[1]
        assert w.training_panel.start_button.text() == "Start"      # no longer waiting
        controller.open_sample()                  # another model, later: nothing starts unasked
        qtbot.waitUntil(lambda: w.session.model is not None and w.session.latest_probe is not None, timeout=WAIT)
        qtbot.wait(500)
        assert w.session.training_state == STOPPED
    finally:
        w.close()


def test_messages_show_what_a_file_says_as_text_not_html(qtbot, settings):
    w = open_window(qtbot, settings)
    try:
        w.show_message("error", "Could not open <b>x</b>.lesson.json")
        box = next(b for b in w.findChildren(QMessageBox) if b.isVisible() and "lesson.json" in b.text())
        assert box.textFormat() == Qt.TextFormat.PlainText and "<b>x</b>" in box.text()
        box.close()
    finally:
        w.close()
