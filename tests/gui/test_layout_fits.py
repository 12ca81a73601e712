"""The window's layout on a 1280x720 projector, normal and in presentation mode: nothing outside its
parent, no text cut off, no horizontal scroll bar, a layer list and plots big enough to read.

Each run is its own process (``layout_probe.py``): Qt fixes the screen's size when it starts.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("layout_probe.py")


def probe(*args: str) -> dict:
    out = subprocess.run([sys.executable, str(PROBE), *args], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["normal", "presentation"])
def test_every_widget_fits_a_1280x720_screen(mode):
    result = probe("1280x720", *(["--presentation"] if mode == "presentation" else []))
    assert result["ok"], "the sample model did not open"
    assert result["faults"] == []
    facts = result["facts"]
    assert facts["window"] == [1280, 720]                      # the whole screen, never beyond it
    assert min(facts["plot_heights"]) >= 70
    if mode == "normal":
        assert facts["layer_rows"] >= 12                       # LeNet-5's twelve layers, all of them
        assert facts["views_share"] >= 0.45
        # Ten views' tabs are wider than the views' column beside both side panels: the row scrolls
        # (every title whole, arrows at its end), and only the last ones wait behind the arrows.
        assert len(facts["tabs_behind_arrows"]) <= 3
    else:
        assert "layer_rows" not in facts                       # the side panels step aside
        assert facts["views_share"] >= 0.8                     # the views get most of the screen
        assert facts["tabs_behind_arrows"] == []              # and every tab is in sight


@pytest.mark.slow
def test_a_lesson_with_its_explanation_fits_a_1280x720_screen():
    result = probe("1280x720", "--lesson", "vanishing_gradients")
    assert result["faults"] == [] and min(result["facts"]["plot_heights"]) >= 70
