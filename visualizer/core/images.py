"""Opening user images (no torch: the window's process opens them); fitting is ``image_fit.py``.

Every PIL mode is normalised to float32 (H, W, C) in [0, 1], C = 1 or 3, in
one place (:func:`_pil_to_array`), because each mode hides its own trap
(PITFALLS.md): 16-bit images clip through ``convert("L")``, palette images give
indices, CMYK has four channels, and alpha hides garbage under transparent
pixels.

Transparency policy: transparent pixels are composited over **black**,
always. The built-in data (MNIST, digits) and the drawing pad are white ink on
black, so a white-on-transparent sketch means the same thing to a model as
its drawn twin; a fixed rule keeps two opens of the same file identical.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import LoadError

# ITU-R BT.601 luma, the weights PIL and most datasets use for RGB -> gray.
LUMINANCE = (0.299, 0.587, 0.114)
# Larger images are refused before decoding: a tiny file can claim any size (PITFALLS.md).
MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class LoadedImage:
    array: np.ndarray               # (H, W, C) float32 in [0, 1], C = 1 or 3
    notes: tuple[str, ...] = ()     # what was done to the pixels, for the user
    path: str | None = None


def load_image(path, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Open any PIL-readable image; raise LoadError naming the file, the problem and a hint."""
    p = Path(path)
    if not p.exists():
        raise LoadError(p, "file not found", "check the path")
    if p.is_dir():
        raise LoadError(p, "is a folder, not an image", "choose an image file")
    if p.stat().st_size == 0:
        raise LoadError(p, "file is empty (0 bytes)", "the file was not written completely; save it again")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            # We enforce our own pixel limit below; PIL's bomb warning would only duplicate it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:  # reads the header only: nothing is decoded yet
                w, h = im.size
                if w * h > max_pixels:
                    raise LoadError(p, f"image claims {w} x {h} pixels, more than the limit of {max_pixels:,}",
                                    "refused before decoding; resize it with an image editor first")
                if w == 0 or h == 0:
                    raise LoadError(p, f"image has no pixels ({w} x {h})", "the file is damaged")
                frames = getattr(im, "n_frames", 1)
                if getattr(im, "is_animated", False) or frames > 1:
                    im.seek(0)
                    notes.append(f"animated image with {frames} frames: the first frame is used")
                im.load()
                if _exif_orientation(im) not in (None, 1):
                    notes.append("rotated as its EXIF orientation says")
                    oriented = ImageOps.exif_transpose(im)
                else:
                    oriented = im
                array = _pil_to_array(oriented, notes)
    except LoadError:
        raise
    except Image.DecompressionBombError as e:
        raise LoadError(p, f"image is too large to decode safely ({e})", "resize it first") from e
    except MemoryError as e:
        raise LoadError(p, "not enough memory to decode this image", "resize it first") from e
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, EOFError, struct.error... for bad files
        raise LoadError(p, f"cannot read image: {_describe(e)}",
                        "the file is damaged, truncated, or not an image in a format Pillow reads") from e
    return LoadedImage(array=array, notes=tuple(notes), path=os.fspath(p))


def _exif_orientation(im) -> int | None:
    try:
        return im.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - a broken EXIF block is no reason to refuse the pixels
        return None


def _describe(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _pil_to_array(im: Image.Image, notes: list[str]) -> np.ndarray:
    """The one place where PIL modes become float32 (H, W, 1|3) in [0, 1]."""
    mode = im.mode
    if mode == "1":
        return _u8(im.convert("L"))
    if mode == "L":
        return _u8(im)
    if mode == "RGB":
        return _u8(im)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        notes.append("16-bit image scaled by 65535 (its full range)")
        return (np.asarray(im).astype(np.float32) / 65535.0)[..., None]
    if mode == "I":
        return _int32_to_unit(im, notes)[..., None]
    if mode == "F":
        return _float_to_unit(np.asarray(im, dtype=np.float32), notes)[..., None]
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in im.info or (im.palette is not None and im.palette.mode == "RGBA")
        notes.append("palette image: colours looked up from its palette")
        return _composite(im.convert("RGBA"), notes) if has_alpha else _u8(im.convert("RGB"))
    if mode in ("RGBA", "RGBa"):
        return _composite(im.convert("RGBA"), notes)
    if mode in ("LA", "La"):
        return _composite(im.convert("LA"), notes)
    if mode == "CMYK":
        notes.append("CMYK image converted to RGB")
        return _u8(im.convert("RGB"))
    try:
        rgb = im.convert("RGB")
    except Exception as e:
        raise ValueError(f"image mode {mode} cannot be converted to RGB ({e})") from e
    notes.append(f"{mode} image converted to RGB")
    return _u8(rgb)


def _u8(im: Image.Image) -> np.ndarray:
    a = np.asarray(im, dtype=np.uint8)
    if a.ndim == 2:
        a = a[..., None]
    return a.astype(np.float32) / 255.0


def _composite(im: Image.Image, notes: list[str]) -> np.ndarray:
    """Colour channels times alpha = over black: whatever hides under alpha 0 becomes 0."""
    a = np.asarray(im, dtype=np.uint8).astype(np.float32) / 255.0
    colour, alpha = a[..., :-1], a[..., -1:]
    if alpha.min() < 1.0:
        notes.append("transparent pixels composited over black")
    return np.ascontiguousarray(colour * alpha, dtype=np.float32)


def _int32_to_unit(im: Image.Image, notes: list[str]) -> np.ndarray:
    a = np.asarray(im).astype(np.float64)
    bits = None
    tags = getattr(im, "tag_v2", None)
    if tags is not None:
        b = tags.get(258)  # TIFF BitsPerSample: the real bit depth, when the file says it
        bits = int(b[0] if isinstance(b, tuple) else b) if b else None
    if bits and 1 <= bits <= 32 and a.min() >= 0:
        notes.append(f"{bits}-bit image scaled by {2 ** bits - 1}")
        return np.clip(a / (2 ** bits - 1), 0, 1).astype(np.float32)
    if a.size and a.min() >= 0 and a.max() <= 65535:
        # Pillow holds 16-bit data (e.g. 16-bit PGM) in 32-bit integers.
        notes.append("integer image scaled by 65535 (16-bit range)")
        return (a / 65535.0).astype(np.float32)
    return _float_to_unit(a.astype(np.float32), notes)


def _float_to_unit(a: np.ndarray, notes: list[str]) -> np.ndarray:
    finite = np.isfinite(a)
    if not finite.all():
        notes.append(f"{int((~finite).sum())} non-finite pixel values replaced by the minimum")
        a = np.where(finite, a, np.nanmin(np.where(finite, a, np.nan)) if finite.any() else 0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo >= 0.0 and hi <= 1.0:
        notes.append("floating-point image used as is (values already in [0, 1])")
        return a.astype(np.float32)
    notes.append(f"floating-point image scaled from its range [{lo:.4g}, {hi:.4g}] to [0, 1]")
    if hi == lo:
        return np.zeros_like(a, dtype=np.float32)
    return ((a - lo) / (hi - lo)).astype(np.float32)


# Notes for the user on what fitting an image to a model does (shared by both sides).

def channel_note(src: int, dst: int) -> str | None:
    if src == dst:
        return None
    if src == 1:
        return f"grayscale repeated to {dst} channels"
    if src == 3 and dst == 1:
        return "RGB converted to grayscale (luminance 0.299 R + 0.587 G + 0.114 B)"
    return f"{src} channels converted to {dst}"


def resize_note(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> str | None:
    (h, w), (H, W) = src_hw, dst_hw
    if (h, w) == (H, W):
        return None
    verb = "upscaled" if h < H and w < W else "resized"
    note = f"{verb} from {w}x{h} to {W}x{H}"
    if h < H and w < W:
        note += " (smaller than the model's input)"
    if abs(w / h - W / H) > 0.01 * (W / H):
        note += ", aspect ratio changed"
    return note
