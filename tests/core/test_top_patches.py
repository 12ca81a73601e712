"""Top dataset patches per channel on a real trained model, against a brute-force search."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.core.test_receptive_fields import affected
from visualizer.core.architectures import build_model
from visualizer.core.assemble import data_for
from visualizer.core.channels.top_patches import ImageSource, TopPatchAccumulator, crop_patch, search_top_patches
from visualizer.core.checkpoint import load_model
from visualizer.core.datasets import load_dataset
from visualizer.core.errors import ModelError
from visualizer.core.inspector import Inspector

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lenet():
    """The shipped LeNet-5, trained on the digits, and the digits prepared as it was trained."""
    bundle = load_model(REPO / "models" / "lenet5_digits.pt")
    data = data_for(bundle, load_dataset("digits"), val_fraction=0.1, reuse_normalisation=True)
    return bundle, data


def brute_force_top(model, layer, source, k=9):
    """Each image alone, the whole map in numpy: (channel -> [(score, index, (y, x))]) best first."""
    out = []
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _a, o: out.append(o[0].numpy()))
    try:
        model.eval()
        with torch.no_grad():
            for i in range(len(source)):
                model(source.normalised([i]))
    finally:
        handle.remove()
    maps = np.stack(out)                                   # (N, C, H, W)
    n, c, h, w = maps.shape
    flat = maps.reshape(n, c, -1)
    best = {}
    for ch in range(c):
        scores = flat[:, ch].max(1)
        where = flat[:, ch].argmax(1)
        order = sorted(range(n), key=lambda i: (-scores[i], i))[:k]
        best[ch] = [(scores[i], i, divmod(int(where[i]), w)) for i in order]
    return best


@pytest.mark.parametrize("layer", ["C1", "C3"])
def test_patches_are_the_receptive_fields_of_the_true_maxima(lenet, layer):
    bundle, data = lenet
    source = ImageSource.from_split(data, "val")
    result = search_top_patches(bundle.model, layer, source, batch_size=32)
    assert result.complete and result.searched == result.total == len(source) and result.split == "val"
    truth = brute_force_top(bundle.model, layer, source)
    fields = affected(bundle.model, (1, 32, 32), [layer])[layer]     # brute-force receptive fields
    assert len(result.channels) == bundle.model.get_submodule(layer).out_channels
    for ch in result.channels:
        expected = truth[ch.channel]
        assert ch.indices.tolist() == [i for _, i, _ in expected]
        assert ch.positions.tolist() == [list(p) for _, _, p in expected]
        np.testing.assert_allclose(ch.scores, [s for s, _, _ in expected], rtol=1e-5, atol=1e-6)
        for patch, index, (y, x), box in zip(ch.patches, ch.indices, ch.positions, ch.boxes):
            rows, cols = np.flatnonzero(fields[:, :, y, x].any(1)), np.flatnonzero(fields[:, :, y, x].any(0))
            assert tuple(box) == (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
            image = source.image(index)                             # (1, 32, 32) uint8
            inside = image[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
            assert patch.shape == (*result.receptive_field.patch_shape, 1)
            # C1 and C3 fields lie inside the image (no padding): the patch is exactly those pixels.
            assert np.array_equal(np.moveaxis(patch, -1, 0), inside)


def test_the_accumulator_fed_from_training_passes_equals_the_search(lenet):
    """A training loop's forward passes, shuffled batches of another size, through the probe's observer."""
    bundle, data = lenet
    model = bundle.model
    source = ImageSource.from_split(data, "train")
    searched = search_top_patches(model, "C3", source, batch_size=64)
    acc = TopPatchAccumulator("C3", 16)
    order = np.random.default_rng(1).permutation(len(source))
    with Inspector(bundle) as inspector:
        model.train()
        try:
            for start in range(0, len(order), 50):
                batch = order[start:start + 50]
                x = source.normalised(batch)
                y = torch.as_tensor(data.train.labels[batch])

                def observe(name, kind, function, t, batch=batch):
                    if name == "C3":
                        acc.feed(t, batch)
                inspector.layer_probe.arm((), want_grads=False, stats=False, batch_observer=observe)
                try:
                    loss = F.cross_entropy(model(x), y)
                finally:
                    inspector.layer_probe.disarm()
                loss.backward()
        finally:
            model.zero_grad(set_to_none=True)
            model.eval()
    fed = acc.result(source, searched.receptive_field)
    assert fed.searched == searched.searched == len(source)
    for a, b in zip(fed.channels, searched.channels):
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.positions, b.positions)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
        assert np.array_equal(a.patches, b.patches)
    # A second epoch over the same images: each image still holds one slot at most.
    with torch.no_grad():
        out = []
        handle = model.C3.register_forward_hook(lambda _m, _a, o: out.append(o))
        model(source.normalised(np.arange(len(source))))
        handle.remove()
    acc.feed(out[0], np.arange(len(source)))
    again = acc.result(source, searched.receptive_field)
    for a, b in zip(again.channels, searched.channels):
        assert len(set(a.indices.tolist())) == len(a.indices) == 9
        assert np.array_equal(a.indices, b.indices)


def test_cancel_stops_a_background_search_promptly():
    shapes = load_dataset("shapes", limit=3000)
    torch.manual_seed(0)
    model = build_model("simplecnn", in_channels=3, num_classes=6, input_size=32)
    source = ImageSource.from_array(shapes.images, mean=(0.5,), std=(0.25,), split="train")
    cancel = threading.Event()
    first = threading.Event()
    calls, result = [], {}

    def progress(done, total):
        calls.append((done, total))
        first.set()

    def work():
        result["r"] = search_top_patches(model, "features.conv3", source, batch_size=16, progress=progress,
                                         cancel=cancel)

    thread = threading.Thread(target=work)
    thread.start()
    assert first.wait(30)
    cancel.set()
    t0 = time.perf_counter()
    thread.join(10)
    assert not thread.is_alive()
    assert time.perf_counter() - t0 < 2.0
    r = result["r"]
    assert r.cancelled and not r.complete and r.total == 3000
    assert r.searched == calls[-1][0] < 3000 and r.searched % 16 == 0
    assert calls[0] == (16, 3000)
    assert all(len(c.indices) == 9 and c.indices.max() < r.searched for c in r.channels)


def test_a_field_bigger_than_the_image_shows_the_whole_image_outside_it_blank():
    shapes = load_dataset("shapes", limit=64)
    torch.manual_seed(0)
    model = build_model("resnet18", in_channels=3, num_classes=6, input_size=32, width=0.125)
    source = ImageSource.from_array(shapes.images, mean=(0.5,), std=(0.25,))
    r = search_top_patches(model, "layer4.1.conv2", source, k=4)
    field = r.receptive_field
    assert field.size[0] > 32 and field.patch_shape == (32, 32)
    ch = r.channels[0]
    assert ch.patches.shape == (4, 32, 32, 3)
    for patch, index, (y, x), (y0, x0, y1, x1) in zip(ch.patches, ch.indices, ch.positions, ch.boxes):
        expected = np.zeros((32, 32, 3), np.uint8)
        expected[y0:y1, x0:x1] = np.moveaxis(source.image(index), 0, -1)[y0:y1, x0:x1]
        assert np.array_equal(patch, expected)
        assert np.array_equal(crop_patch(source.image(index), field, y, x), patch)


def test_bad_requests_say_what_is_wrong(lenet):
    bundle, data = lenet
    source = ImageSource.from_split(data, "val")
    with pytest.raises(ModelError, match="not a 2-D conv layer"):
        search_top_patches(bundle.model, "F6", source)
    with pytest.raises(ModelError, match="no layer 'nope'"):
        search_top_patches(bundle.model, "nope", source)
    acc = TopPatchAccumulator("C3", 16)
    with pytest.raises(ValueError, match="dataset indices"):
        acc.feed(torch.zeros(4, 16, 10, 10), [0, 1])
