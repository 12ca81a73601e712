"""The two questions gui/recovery.py asks, as real message boxes: an engine that stalls (and recovers:
the box closes itself), and an interrupted run found at start (resume, not now, dismiss)."""
from __future__ import annotations

import time

from PyQt6.QtWidgets import QMessageBox

from tests.gui.test_worker_recovery import NET, WAIT
from visualizer.core.config import TrainConfig
from visualizer.core.engine import autosave
from visualizer.core.user_dirs import autosave_dir
from visualizer.gui.controller import Controller
from visualizer.gui.main_window import MainWindow
from visualizer.gui.settings import Settings

LIMIT = 256


def window(qtbot, tmp_path, **controller_options) -> MainWindow:
    settings = Settings(tmp_path / "settings.ini")
    w = MainWindow(settings, controller=Controller(settings, sample_limit=LIMIT, **controller_options))
    w.controller.ask_trust = lambda req: False
    qtbot.addWidget(w)
    w.show()
    w.start()
    qtbot.waitUntil(lambda: w.session.model is not None and w.session.latest_probe is not None, timeout=WAIT)
    return w


def boxes(w, containing: str) -> list[QMessageBox]:
    return [b for b in w.findChildren(QMessageBox) if b.isVisible() and containing in b.text()]


def test_a_stalled_engine_gets_a_box_naming_the_file_that_closes_itself_when_it_recovers(qtbot, tmp_path):
    path = tmp_path / "slow_net.py"
    path.write_text(NET.format(init="pass", fault="import time; time.sleep(6) if self.calls == 3 else None"))
    w = window(qtbot, tmp_path, process=True, stuck_after_s=2.0)
    try:
        w.open_path(f"{path}:Net")
        qtbot.waitUntil(lambda: w.session.model.arch == f"{path}:Net", timeout=WAIT)
        w.controller.start_training(TrainConfig(epochs=10_000, batch_size=32))
        # (on a slow machine the engine's start-up can take this test's 2 s patience first: that box says
        # "while starting", and is replaced; the one about the model's step names its file)
        qtbot.waitUntil(lambda: bool(boxes(w, str(path))), timeout=WAIT)
        (box,) = boxes(w, "no progress")
        assert str(path) in box.text()
        assert sorted(b.text() for b in box.buttons()) == ["Stop the training process", "Wait"]
        with qtbot.waitSignal(w.controller.engine_responsive, timeout=WAIT):
            pass                                            # the step ends after 6 s: progress again
        qtbot.waitUntil(lambda: not boxes(w, "no progress"), timeout=5_000)
        step = w.session.latest_training.step if w.session.latest_training else 0
        qtbot.waitUntil(lambda: w.session.latest_training is not None and w.session.latest_training.step > step,
                        timeout=WAIT)                       # it trains on: nothing was stopped
    finally:
        w.close()


def interrupted_record(tmp_path, run_id: str) -> autosave.AutosaveRecord:
    folder = autosave_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{run_id}.pt").write_bytes(b"not opened by these tests")
    rec = autosave.AutosaveRecord(run_id=run_id, checkpoint=str(folder / f"{run_id}.pt"), state=autosave.RUNNING,
                                  step=40, epoch=5, epochs=30, model="lenet5", dataset="digits",
                                  started=time.time() - 60, saved=time.time() - 30)
    autosave.write_record(folder, rec)
    return rec


def test_an_interrupted_run_is_offered_at_start_and_dismiss_stops_the_offers(qtbot, tmp_path):
    rec = interrupted_record(tmp_path, "20261201-120000-lenet5-1")
    w = window(qtbot, tmp_path)
    try:
        qtbot.waitUntil(lambda: bool(boxes(w, "was interrupted")), timeout=WAIT)
        (box,) = boxes(w, "was interrupted")
        assert "lenet5 on digits: epoch 5 of 30 done, step 40" in box.text()
        assert sorted(b.text() for b in box.buttons()) == ["Dismiss", "Not now", "Resume training"]
        next(b for b in box.buttons() if b.text() == "Dismiss").click()
        saved = autosave.read_record(autosave.record_path(autosave_dir(), rec.run_id))
        assert saved.state == autosave.DISMISSED
        assert autosave.interrupted_runs(autosave_dir()) == []
    finally:
        w.close()
    w = window(qtbot, tmp_path)                             # the next start asks nothing
    try:
        qtbot.wait(500)
        assert boxes(w, "was interrupted") == []
    finally:
        w.close()


def test_not_now_asks_again_at_the_next_start_and_resume_failing_leaves_a_usable_window(qtbot, tmp_path):
    interrupted_record(tmp_path, "20261201-120000-lenet5-2")
    w = window(qtbot, tmp_path)
    try:
        qtbot.waitUntil(lambda: bool(boxes(w, "was interrupted")), timeout=WAIT)
        next(b for b in boxes(w, "was interrupted")[0].buttons() if b.text() == "Not now").click()
    finally:
        w.close()
    w = window(qtbot, tmp_path)
    try:
        qtbot.waitUntil(lambda: bool(boxes(w, "was interrupted")), timeout=WAIT)
        # This checkpoint is damaged: resuming says so and the window stays as it was, stopped.
        next(b for b in boxes(w, "was interrupted")[0].buttons() if b.text() == "Resume training").click()
        qtbot.waitUntil(lambda: bool(boxes(w, "20261201-120000-lenet5-2.pt")), timeout=WAIT)
        qtbot.waitUntil(lambda: w.session.training_state == "stopped", timeout=WAIT)
        assert w.session.model.arch == "lenet5"
        w.controller.start_training(TrainConfig(epochs=10_000, batch_size=32))
        qtbot.waitUntil(lambda: w.session.latest_training is not None and w.session.latest_training.step > 2,
                        timeout=WAIT)
        w.controller.stop()
        qtbot.waitUntil(lambda: w.session.training_state == "stopped", timeout=WAIT)
    finally:
        w.close()


def test_the_apps_own_run_is_in_open_recent_and_opens_as_a_replay(qtbot, tmp_path):
    from tests.gui.test_worker_recovery import SHORT
    w = window(qtbot, tmp_path)
    try:
        started: list = []
        w.controller.run_file_started.connect(started.append)
        w.controller.start_training(SHORT)
        qtbot.waitUntil(lambda: len(w.session.epochs) >= 2 and bool(started), timeout=WAIT)
        w.controller.stop()
        qtbot.waitUntil(lambda: w.session.training_state == "stopped", timeout=WAIT)
        path = started[0]
        assert w.settings.recent_files()[0] == path    # the newest recent file: File > Open recent lists it
        w._fill_recent()
        assert path in [a.text() for a in w.recent_menu.actions()]
        assert w.open_path(path)                       # what Open recent does with it
        steps = w.replay.steps()
        assert len(steps) >= 16 and w.replay.snapshot_steps().size > 0   # every step, and its snapshots
        assert [e.epoch for e in w.replay.epochs()][:2] == [0, 1]
    finally:
        w.close()
