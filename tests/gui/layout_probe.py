"""Opens the real window on a virtual screen of a given size and lists every layout fault found.

Run as a script (its own process: the screen size is fixed when Qt starts):

    python tests/gui/layout_probe.py 1280x720 [--presentation] [--lesson NAME] [--shot OUT.png]

prints one JSON object: ``faults`` (text that does not fit its widget, a widget outside its
parent, a horizontal scroll bar, tabs past the end of their bar, overlapping overview labels, a
layer list or a plot too small to read) and ``facts`` (sizes the test also checks).
"""
from __future__ import annotations

import faulthandler
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _screen_config(width: int, height: int) -> str:
    path = Path(tempfile.mkdtemp(prefix="screen-")) / "screens.json"
    path.write_text(json.dumps({"synchronousWindowSystemEvents": False, "windowFrameMargins": False,
                                "screens": [{"name": "projector", "x": 0, "y": 0, "width": width, "height": height,
                                             "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    return str(path)


def main(argv: list[str]) -> int:
    faulthandler.enable()     # a crash prints where it happened
    size = argv[0]
    width, height = (int(v) for v in size.split("x"))
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_screen_config(width, height)}"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    config = tempfile.mkdtemp(prefix="cnnvis-config-")
    os.environ["CNN_VISUALIZER_CONFIG_DIR"] = config
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

    from PyQt6.QtWidgets import QApplication
    app = QApplication(sys.argv[:1])
    from visualizer.gui.controller import Controller
    from visualizer.gui.main_window import MainWindow
    from visualizer.gui.settings import Settings
    from visualizer.gui.theme import apply_theme

    apply_theme(app, "dark")
    settings = Settings(Path(config) / "settings.ini")
    controller = Controller(settings, sample_limit=256)
    window = MainWindow(settings, controller=controller)
    window.show()
    window.start()

    def wait(cond, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            if cond():
                return True
            time.sleep(0.02)
        return cond()

    ok = wait(lambda: window.session.model is not None and window.session.latest_probe is not None, 60)
    lesson = argv[argv.index("--lesson") + 1] if "--lesson" in argv else None
    if lesson:
        from visualizer.core.lesson_catalog import LESSONS_BY_NAME
        window.lesson_runner.open(LESSONS_BY_NAME[lesson])
        ok = ok and wait(lambda: window.lesson_runner.matches(window.session.model), 60)
    if "--presentation" in argv:
        window.set_presentation(True)
    wait(lambda: False, 1.5)          # layouts settle, the views draw
    from tests.gui.layout_faults import layout_faults
    faults, facts = layout_faults(window)
    if lesson:
        dock = window.lesson_dock
        facts["lesson_shown"] = dock.isVisible() and not dock.visibleRegion().isEmpty()
    if "--shot" in argv:
        window.grab().save(argv[argv.index("--shot") + 1])
    print(json.dumps({"ok": ok, "faults": faults, "facts": facts}), flush=True)
    window.close()
    app.processEvents()
    # Straight out: this process only measures a layout (the app's own shutdown is tested with
    # the real app). One run on a loaded machine died with SIGSEGV and no Python trace; should
    # that happen before this point, faulthandler (above) now says where.
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
