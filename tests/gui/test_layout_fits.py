"""The window's layout on a 1280x720 projector, a 1600x1000 and a 1920x1080 screen, normal and in
presentation mode, with and without a lesson's explanation: nothing outside its parent, no text
cut off, no horizontal scroll bar, the window no bigger than the screen, a layer list and plots big
enough to read.

Each run is its own process (``layout_probe.py``): Qt fixes the screen's size when it starts.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("layout_probe.py")
SIZES = ("1280x720", "1600x1000", "1920x1080")


def probe(*args: str) -> dict:
    out = subprocess.run([sys.executable, str(PROBE), *args], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def fits_the_screen(size: str, result: dict) -> dict:
    assert result["ok"], "the sample model did not open"
    assert result["faults"] == []
    facts = result["facts"]
    width, height = (int(v) for v in size.split("x"))
    assert facts["window"][0] <= width and facts["window"][1] <= height   # never beyond the screen
    assert min(facts["plot_heights"]) >= 70
    return facts


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["normal", "presentation"])
def test_every_widget_fits_the_screen(size, mode):
    facts = fits_the_screen(size, probe(size, *(["--presentation"] if mode == "presentation" else [])))
    if mode == "normal":
        assert facts["layer_rows"] >= 12                       # LeNet-5's twelve layers, all of them
        assert facts["views_share"] >= 0.45
        # Ten views' tabs are wider than the views' column beside both side panels at 1280: the row
        # scrolls (every title whole, arrows at its end), and only the last ones wait behind the arrows.
        assert len(facts["tabs_behind_arrows"]) <= 3
    else:
        assert facts["window"] == [int(v) for v in size.split("x")]   # the whole screen
        assert "layer_rows" not in facts                       # the side panels step aside
        assert facts["views_share"] >= 0.8                     # the views get most of the screen
        assert facts["tabs_behind_arrows"] == []              # and every tab is in sight


@pytest.mark.slow
@pytest.mark.parametrize("size", ["1280x720", "1920x1080"])
@pytest.mark.parametrize("mode", ["normal", "presentation"])
def test_a_lesson_with_its_explanation_fits_the_screen(size, mode):
    # The lesson with the longest text and a row of variant buttons.
    args = ["--lesson", "vanishing_gradients"] + (["--presentation"] if mode == "presentation" else [])
    facts = fits_the_screen(size, probe(size, *args))
    assert facts["lesson_shown"]                               # the lesson opened, its explanation on screen
    if mode == "presentation":
        assert facts["window"] == [int(v) for v in size.split("x")]
        assert facts["views_share"] >= 0.6                     # the explanation beside them takes the rest
