"""Opening ordinary images, fitting them to a model's input, normalising, and finding resources."""
import numpy as np
import pytest
from PIL import Image

from visualizer.core.errors import LoadError
from visualizer.core.image_fit import normalise, to_model_input
from visualizer.core.images import LoadedImage, load_image
from visualizer.core.resources import resource_path, resources_dir


def test_rgb_png_is_exact(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "x.png")
    im = load_image(tmp_path / "x.png")
    assert isinstance(im, LoadedImage) and im.path == str(tmp_path / "x.png")
    assert im.array.shape == (5, 7, 3) and im.array.dtype == np.float32
    np.testing.assert_array_equal(np.round(im.array * 255).astype(np.uint8), a)
    assert im.notes == ()


def test_grayscale_and_bilevel_keep_one_channel(tmp_path):
    Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16).save(tmp_path / "g.png")
    Image.new("1", (3, 2), 1).save(tmp_path / "b.png")
    g, b = load_image(tmp_path / "g.png"), load_image(tmp_path / "b.png")
    assert g.array.shape == (4, 4, 1) and g.array[0, 1, 0] == pytest.approx(16 / 255)
    assert b.array.shape == (2, 3, 1) and np.all(b.array == 1.0)


def test_jpeg_is_close_to_its_source(tmp_path):
    Image.new("RGB", (16, 16), (200, 40, 10)).save(tmp_path / "x.jpg", quality=95)
    im = load_image(tmp_path / "x.jpg")
    np.testing.assert_allclose(im.array[8, 8], np.array([200, 40, 10]) / 255, atol=0.03)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (20, 10), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "phone.jpg", exif=exif)
    im = load_image(tmp_path / "phone.jpg")
    assert im.array.shape[:2] == (20, 10)
    assert any("EXIF" in n for n in im.notes)


def test_to_model_input_resizes_with_a_note():
    a = np.random.default_rng(0).random((48, 64, 3), dtype=np.float32)
    x, notes = to_model_input(a, (3, 32, 32))
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1
    assert any("resized from 64x48 to 32x32" in n for n in notes)
    assert any("aspect ratio" in n for n in notes)


def test_to_model_input_antialiases_when_shrinking():
    # A one-pixel checkerboard shrunk 4x must become flat gray, not a moire of 0s and 1s.
    board = (np.indices((64, 64)).sum(0) % 2).astype(np.float32)[..., None]
    x, _ = to_model_input(board, (1, 16, 16))
    assert np.allclose(x, 0.5, atol=0.02)


def test_to_model_input_same_size_is_untouched():
    a = np.random.default_rng(1).random((32, 32, 1), dtype=np.float32)
    x, notes = to_model_input(a, (1, 32, 32))
    assert notes == () and np.array_equal(x[0], a[..., 0])


def test_to_model_input_accepts_a_2d_drawing():
    drawing = np.zeros((28, 28), np.float32)
    drawing[10:18, 13:15] = 1.0
    x, notes = to_model_input(drawing, (1, 28, 28))
    assert x.shape == (1, 28, 28) and x.sum() == pytest.approx(16.0)


def test_channel_conversions():
    rgb = np.zeros((4, 4, 3), np.float32)
    rgb[..., 0] = 1.0  # pure red
    gray, notes = to_model_input(rgb, (1, 4, 4))
    assert np.allclose(gray, 0.299) and any("luminance" in n for n in notes)
    g = np.full((4, 4, 1), 0.25, np.float32)
    three, notes = to_model_input(g, (3, 4, 4))
    assert three.shape == (3, 4, 4) and np.allclose(three, 0.25) and any("repeated" in n for n in notes)


def test_normalise_per_channel():
    a = np.stack([np.full((2, 2), 0.5), np.full((2, 2), 1.0)]).astype(np.float32)
    out = normalise(a, (0.5, 0.0), (0.25, 2.0))
    assert out.dtype == np.float32
    assert np.allclose(out[0], 0.0) and np.allclose(out[1], 0.5)
    assert np.allclose(normalise(a, (0.5,), (0.5,))[1], 1.0)  # one value broadcasts
    with pytest.raises(ValueError):
        normalise(a, (0.1, 0.2, 0.3), (1.0,))
    with pytest.raises(ValueError):
        normalise(a, (0.0,), (0.0,))


def test_resource_path_finds_bundled_files_and_names_missing_ones():
    p = resource_path("data", "digits.csv.gz")
    assert p.is_file() and p.parent.parent == resources_dir()
    with pytest.raises(LoadError) as e:
        resource_path("data", "nope.bin")
    assert "nope.bin" in str(e.value) and e.value.hint
