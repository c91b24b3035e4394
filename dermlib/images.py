"""Turn uploaded bytes or a file path into an RGB image a model can use.

:func:`load_image` is the one entry point. It refuses bad input with :class:`~dermlib.errors.ImageError`
whose message is written for the person who uploaded the file, and it never decodes more pixels than
:data:`MAX_PIXELS` allows: the pixel count is read from the header before any decoding happens.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from dermlib.errors import ImageError

try:  # HEIC/HEIF from phones; optional so the library still imports without the wheel.
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - pillow-heif is in requirements.txt
    HEIF_SUPPORTED = False

# A truncated file must be refused, not silently padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False

MAX_BYTES = 25 * 1024 * 1024
"""Largest accepted file (bytes): 25 MiB, as ``server.maxUploadSize`` (in MiB) in .streamlit/config.toml."""
MAX_PIXELS = 50_000_000
"""Largest accepted image (width x height), checked from the header before decoding."""
MIN_SIDE = 32
"""Smallest accepted side in pixels: below this there is nothing for a model to judge."""
MAX_SIDE = 1024
"""Longest side of the returned image; enough for display and far above any model's input size."""

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF", "GIF", "BMP", "TIFF", "MPO")
# Streamlit refuses other extensions before the page runs; the content, not the name, decides what is read.
UPLOAD_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "heic", "heif", "gif", "bmp", "tif", "tiff")


def load_image(
    source: bytes | bytearray | str | Path | BinaryIO,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    min_side: int = MIN_SIDE,
    max_side: int | None = MAX_SIDE,
) -> Image.Image:
    """Read an image and return it as an upright 8-bit RGB :class:`PIL.Image.Image`.

    Applies the EXIF orientation; converts RGBA/LA/P (over white), CMYK, 16-bit and float, and
    grayscale to RGB; takes the first frame of animations; reads JPEG, PNG, WebP, HEIC/HEIF, GIF,
    BMP and TIFF.

    Args:
        source: The raw bytes, a path, or a binary file object.
        max_bytes: Refuse files larger than this.
        max_pixels: Refuse images with more pixels than this (decompression-bomb guard).
        min_side: Refuse images whose shorter side is below this.
        max_side: Downscale so the longer side is at most this (``None`` keeps the size).

    Returns:
        The image in mode ``"RGB"``.

    Raises:
        ImageError: The input is empty, not an image, corrupt or truncated, too large or too small.
    """
    # Re-assert per call: another library in the process may have switched truncated loading on.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    data = _read_bytes(source, max_bytes)
    if not data:
        raise ImageError("The file is empty (0 bytes). Please choose a photo of the skin.")

    with warnings.catch_warnings():
        # PIL warns (and past 2x raises) on huge images; we apply our own, stricter limit below.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            if isinstance(exc, UnidentifiedImageError):
                raise ImageError(
                    "This file is not an image DermLens can read. Please upload a JPEG, PNG, WebP, HEIC, GIF, "
                    "BMP or TIFF photo."
                ) from exc
            raise ImageError(_too_many_pixels_message(None, max_pixels)) from exc
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"The image could not be opened; the file looks damaged ({exc}).") from exc

        width, height = img.size
        if width * height > max_pixels:
            raise ImageError(_too_many_pixels_message((width, height), max_pixels))
        if min(width, height) < min_side:
            raise ImageError(
                f"The image is only {width}x{height} pixels; at least {min_side} pixels on each side are "
                "needed to judge a skin condition."
            )

        try:
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)  # animations: the first frame is the photo
            if img.format in ("JPEG", "MPO") and max_side is not None:
                # Let libjpeg decode at a reduced scale: big phone photos never reach full size in memory.
                img.draft("RGB", (max_side, max_side))
            img.load()
            img = ImageOps.exif_transpose(img)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise ImageError(
                "The image file is truncated or corrupt and cannot be decoded. Please upload the photo again."
            ) from exc

    rgb = to_rgb(img)
    if max_side is not None and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return rgb


def rgb_for_reading(img: Image.Image) -> Image.Image:
    """``img`` itself when it is already RGB, else ``img.convert("RGB")``: for code that only reads the pixels.

    ``convert`` copies even an RGB photo, and one diagnosis used to read the same upload through four such
    copies (the classifier's view, its mask, the scope check's input and its quality measures).
    """
    return img if img.mode == "RGB" else img.convert("RGB")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB the way a person would expect it to look.

    Transparent areas become white (not black); 16-bit and 32-bit images are scaled, not clipped.

    Args:
        img: A decoded image in any mode.

    Returns:
        A new image in mode ``"RGB"``.
    """
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = _scale_to_8bit(arr, mode)
        return Image.fromarray(arr, mode="L").convert("RGB")
    # CMYK, L, 1, YCbCr, LAB, HSV: Pillow's own conversions are correct for these.
    return img.convert("RGB")


def _scale_to_8bit(arr: np.ndarray, mode: str) -> np.ndarray:
    """Map a high-bit-depth single-channel array onto 0..255."""
    if mode.startswith("I;16"):
        scaled = arr / 257.0
    else:
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if mode == "F" and lo >= 0.0 and hi <= 1.0:
            scaled = arr * 255.0
        elif lo >= 0.0 and hi <= 255.0:
            scaled = arr
        elif lo >= 0.0 and hi <= 65535.0:
            scaled = arr / 257.0
        else:
            scaled = (arr - lo) / max(hi - lo, 1e-12) * 255.0
    return np.clip(np.rint(np.nan_to_num(scaled)), 0, 255).astype(np.uint8)


def _read_bytes(source: bytes | bytearray | str | Path | BinaryIO, max_bytes: int) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"No image file at {path}.")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(_too_big_message(size, max_bytes))
        data = path.read_bytes()
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
    else:
        raise ImageError(f"Cannot read an image from a {type(source).__name__}.")
    if len(data) > max_bytes:
        raise ImageError(_too_big_message(len(data), max_bytes))
    return data


def _format_bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} bytes"


def _too_big_message(size: int, max_bytes: int) -> str:
    # MB here means MiB, as in Streamlit's own "Limit 25MB per file".
    return (
        f"The file is {_format_bytes(size)}; the limit is {_format_bytes(max_bytes)}. "
        "Please upload a smaller photo (a phone photo is usually 2-5 MB)."
    )


def _too_many_pixels_message(size: tuple[int, int] | None, max_pixels: int) -> str:
    what = f"The image is {size[0]}x{size[1]} pixels," if size else "The image header claims too many pixels,"
    return (
        f"{what} above the limit of {max_pixels / 1e6:.0f} megapixels. It may be a "
        "damaged or malicious file; please upload an ordinary photo."
    )
