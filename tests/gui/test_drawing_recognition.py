"""A digit drawn on the pad reaches the sample models preprocessed like their training data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from visualizer.core.checkpoint import load_model
from visualizer.core.image_fit import normalise, to_model_input
from visualizer.gui.widgets.drawing_pad import DrawingPad
from visualizer.gui.widgets.mnist_preprocess import MNIST_BOX_FRACTION

MODELS = Path(__file__).resolve().parents[2] / "models"


def stroke_image(digit: int, size: int) -> np.ndarray:
    """A mouse drawing of 0 or 1 as the pad's canvas would hold it (white ink on black)."""
    c = np.zeros((size, size), np.float32)
    yy, xx = np.mgrid[:size, :size] / size
    if digit == 1:
        c[(abs(xx - 0.5) < 0.04) & (yy > 0.15) & (yy < 0.85)] = 1
    else:
        r = np.hypot((yy - 0.5) / 0.36, (xx - 0.5) / 0.25)
        c[abs(r - 1) < 0.15] = 1
    return c


@pytest.mark.parametrize("model, native, box", [("lenet5_digits.pt", 8, 1.0),
                                                ("lenet5_mnist.pt", 28, MNIST_BOX_FRACTION)])
@pytest.mark.parametrize("digit", [0, 1])
def test_drawn_digit_is_recognised(qtbot, model, native, box, digit):
    pad = DrawingPad()
    qtbot.addWidget(pad)
    pad.set_output_size(native, native)
    pad.set_box_fraction(box)
    pad.set_image(stroke_image(digit, pad.canvas.pixels().shape[0]))
    drawn = pad.current_image()
    assert drawn.shape == (native, native) and drawn.max() > 0.5
    bundle = load_model(MODELS / model)
    x, _ = to_model_input(drawn, bundle.input_shape)           # as the controller does
    bundle.model.eval()
    with torch.no_grad():
        p = torch.softmax(bundle.model(torch.from_numpy(normalise(x, bundle.mean, bundle.std))[None]), 1)[0]
    assert int(p.argmax()) == digit and float(p.max()) > 0.8
