"""Hostile and awkward image files: each is a LoadError naming the file and cause, or a documented recovery."""
import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from visualizer.core.errors import LoadError
from visualizer.core.image_fit import to_model_input
from visualizer.core.images import load_image


def refused(path, *words):
    with pytest.raises(LoadError) as e:
        load_image(path)
    text = str(e.value)
    assert e.value.path == str(path) and str(path) in text and e.value.hint
    for w in words:
        assert w in text.lower()
    return e.value


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


# ---------------------------------------------------------------- broken files


def test_text_file_named_png(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is not an image\n" * 3)
    refused(p, "cannot read image")


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    refused(p, "empty")


def test_missing_file_and_folder(tmp_path):
    refused(tmp_path / "absent.png", "not found")
    refused(tmp_path, "folder")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path, fmt):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, fmt)
    p = tmp_path / f"cut.{fmt.lower()}"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert not ImageFile.LOAD_TRUNCATED_IMAGES  # we must not rely on a global that hides damage
    refused(p, "cannot read image")


def test_png_header_claiming_10000_by_10000_is_refused_before_decoding(tmp_path, monkeypatch):
    ihdr = struct.pack(">IIBBBBB", 10_000, 10_000, 8, 0, 0, 0, 0)  # 8-bit grayscale
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + png_chunk(b"IEND", b""))
    p = tmp_path / "bomb.png"
    p.write_bytes(data)
    assert len(data) < 100

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    t = time.perf_counter()
    err = refused(p, "10000 x 10000", "before decoding")
    assert time.perf_counter() - t < 0.5
    assert "limit" in err.problem


def test_max_pixels_is_the_callers_limit(tmp_path):
    Image.new("L", (10, 10)).save(tmp_path / "ten.png")
    assert load_image(tmp_path / "ten.png", max_pixels=100).array.shape == (10, 10, 1)
    with pytest.raises(LoadError):
        load_image(tmp_path / "ten.png", max_pixels=99)


# ---------------------------------------------------------------- awkward modes, recovered


def test_16bit_grayscale_png_keeps_its_gradient(tmp_path):
    grad = np.linspace(0, 65535, 512).astype(np.uint16).reshape(1, -1).repeat(4, 0)
    p = tmp_path / "g16.png"
    Image.fromarray(grad).save(p)
    assert p.read_bytes()[24] == 16  # IHDR bit depth: really a 16-bit file
    im = load_image(p)
    a = im.array[..., 0]
    assert im.array.shape == (4, 512, 1)
    assert (a >= 0.999).mean() < 0.01            # convert("L") made 99.6% of this white
    assert np.all(np.diff(a[0]) > 0)             # still strictly increasing: a gradient
    np.testing.assert_allclose(a[0], grad[0] / 65535, atol=1e-6)
    assert any("16-bit" in n for n in im.notes)


def test_palette_png_with_transparency_gives_colours_over_black(tmp_path):
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))  # 0: red (hidden), 1: green
    pal.putpixel((0, 0), 1)
    p = tmp_path / "pal.png"
    pal.save(p, transparency=0)
    im = load_image(p)
    assert im.array.shape == (4, 4, 3)
    np.testing.assert_allclose(im.array[0, 0], [0, 1, 0])   # a colour, not the palette index 1
    np.testing.assert_allclose(im.array[1, 1], [0, 0, 0])   # red under transparency is gone
    assert any("palette" in n for n in im.notes) and any("over black" in n for n in im.notes)


def test_palette_png_without_transparency(tmp_path):
    pal = Image.new("P", (2, 2), 3)
    pal.putpalette([0, 0, 0] * 3 + [10, 20, 30] + [0] * (252 * 3))
    pal.save(tmp_path / "p.png")
    np.testing.assert_allclose(load_image(tmp_path / "p.png").array[0, 0], np.array([10, 20, 30]) / 255)


def test_rgba_garbage_under_transparent_pixels_is_removed(tmp_path):
    a = np.zeros((2, 2, 4), np.uint8)
    a[0, 0] = (255, 255, 0, 0)      # fully transparent yellow garbage
    a[0, 1] = (200, 100, 50, 255)   # opaque
    a[1, 0] = (255, 255, 255, 128)  # half-transparent white
    Image.fromarray(a, "RGBA").save(tmp_path / "rgba.png")
    im = load_image(tmp_path / "rgba.png")
    assert im.array.shape == (2, 2, 3)
    np.testing.assert_allclose(im.array[0, 0], 0)
    np.testing.assert_allclose(im.array[0, 1], np.array([200, 100, 50]) / 255, atol=1e-6)
    np.testing.assert_allclose(im.array[1, 0], 128 / 255, atol=1e-6)


def test_gray_with_alpha(tmp_path):
    Image.fromarray(np.array([[[255, 0], [255, 255]]], np.uint8), "LA").save(tmp_path / "la.png")
    im = load_image(tmp_path / "la.png")
    assert im.array.shape == (1, 2, 1) and im.array[0, 0, 0] == 0 and im.array[0, 1, 0] == 1


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)  # red in print colours
    im = load_image(tmp_path / "cmyk.jpg")
    assert im.array.shape == (8, 8, 3)
    r, g, b = im.array[4, 4]
    assert r > 0.9 and g < 0.1 and b < 0.1
    assert any("CMYK" in n for n in im.notes)


def test_float_tiff_is_scaled_by_its_range(tmp_path):
    a = np.linspace(-5, 5, 20, dtype=np.float32).reshape(4, 5)
    Image.fromarray(a, "F").save(tmp_path / "f.tif")
    im = load_image(tmp_path / "f.tif")
    assert im.array.min() == 0.0 and im.array.max() == 1.0
    np.testing.assert_allclose(im.array[..., 0], (a + 5) / 10, atol=1e-6)
    assert any("floating-point" in n and "-5" in n for n in im.notes)


def test_float_tiff_with_nan_and_unit_range(tmp_path):
    a = np.array([[0.25, np.nan], [0.5, 0.75]], np.float32)
    Image.fromarray(a, "F").save(tmp_path / "nan.tif")
    im = load_image(tmp_path / "nan.tif")
    assert np.isfinite(im.array).all()
    assert im.array[0, 0, 0] == pytest.approx(0.25)  # already in [0, 1]: kept, not stretched
    assert any("non-finite" in n for n in im.notes)


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    im = load_image(tmp_path / "anim.gif")
    assert im.array.shape == (6, 6, 3)
    r, g, b = im.array[3, 3]
    assert r > 0.9 and g < 0.1 and b < 0.1
    assert any("first frame" in n and "3 frames" in n for n in im.notes)


# ---------------------------------------------------------------- fitting awkward images to a model


def test_image_smaller_than_the_input_is_upscaled_with_a_note(tmp_path):
    Image.new("L", (4, 4), 255).save(tmp_path / "tiny.png")
    x, notes = to_model_input(load_image(tmp_path / "tiny.png").array, (1, 32, 32))
    assert x.shape == (1, 32, 32) and np.allclose(x, 1.0)
    assert any("upscaled from 4x4 to 32x32" in n and "smaller" in n for n in notes)


def test_grayscale_image_for_an_rgb_model_and_the_reverse(tmp_path):
    Image.new("L", (32, 32), 128).save(tmp_path / "gray.png")
    Image.new("RGB", (32, 32), (0, 0, 255)).save(tmp_path / "blue.png")
    rgb, notes = to_model_input(load_image(tmp_path / "gray.png").array, (3, 32, 32))
    assert rgb.shape == (3, 32, 32) and np.allclose(rgb, 128 / 255) and notes
    gray, notes = to_model_input(load_image(tmp_path / "blue.png").array, (1, 32, 32))
    assert gray.shape == (1, 32, 32) and np.allclose(gray, 0.114, atol=1e-6) and notes
