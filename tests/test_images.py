"""Every kind of input :func:`dermlib.images.load_image` meets: formats, orientations, modes, refusals.

All images are made here (no fixtures on disk). Where an encoder is lossless (PNG, lossless WebP, BMP,
TIFF) the returned pixels must equal the source exactly; lossy formats get a small tolerance.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from dermlib import images as images_module
from dermlib.errors import ImageError
from dermlib.images import MAX_BYTES, MAX_PIXELS, MAX_SIDE, MIN_SIDE, load_image, to_rgb
from dermlib.testing import forged_png, image_bytes, synthetic_skin_image

# --------------------------------------------------------------------------------------------- helpers


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size, f"sizes differ: {a.size} vs {b.size}"
    return float(np.abs(pixels(a) - pixels(b)).mean())


def asymmetric_image(width: int = 80, height: int = 48) -> Image.Image:
    """Non-square, with 16x16 blocks of distinct colours: no flip or rotation maps it onto itself.

    Blocks (not per-pixel noise) keep JPEG's error small, so the JPEG orientation case can use a tight
    tolerance; every pixel still differs from its mirror images.
    """
    yy, xx = np.mgrid[0:height, 0:width]
    bx, by = xx // 16, yy // 16
    arr = np.stack([bx * 50 + 10, by * 80 + 20, (bx * 3 + by * 7) % 11 * 23], axis=-1)
    return Image.fromarray(arr.astype(np.uint8))


# EXIF orientation n: the stored pixels must be transformed by DISPLAY[n] to look right (EXIF 2.3,
# tag 0x0112). Written with numpy, independently of Pillow's own table, so a wrong table in the code
# under test cannot agree with the test by construction.
DISPLAY: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirror horizontally
    3: lambda a: np.rot90(a, 2),  # rotate 180
    4: lambda a: a[::-1, :],  # mirror vertically
    5: lambda a: np.rot90(a[:, ::-1], 1),  # mirror horizontally, then rotate 270 CW (= transpose)
    6: lambda a: np.rot90(a, -1),  # rotate 90 CW
    7: lambda a: np.rot90(a[:, ::-1], -1),  # mirror horizontally, then rotate 90 CW (= transverse)
    8: lambda a: np.rot90(a, 1),  # rotate 270 CW
}
# The inverse of each: what a camera stores so that DISPLAY[n] gives the scene back.
STORE: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1, :],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, -1),
}


def stored_with_orientation(original: Image.Image, orientation: int) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(STORE[orientation](np.asarray(original))))


def exif_with_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


@pytest.fixture
def skin() -> Image.Image:
    return synthetic_skin_image(seed=3, size=(120, 90))


# ------------------------------------------------------------------------------------ formats, round trip


@pytest.mark.parametrize(
    ("fmt", "save_args"),
    [("PNG", {}), ("WEBP", {"lossless": True}), ("BMP", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"})],
)
def test_lossless_formats_round_trip_exactly(skin: Image.Image, fmt: str, save_args: dict) -> None:
    out = load_image(image_bytes(skin, fmt, **save_args))
    assert out.mode == "RGB"
    assert out.size == skin.size
    assert np.array_equal(pixels(out), pixels(skin))


@pytest.mark.parametrize(("fmt", "save_args", "tolerance"), [
    # The synthetic image carries sensor-like noise (sigma 6) that lossy codecs smooth away.
    ("JPEG", {"quality": 95}, 6.0),
    ("WEBP", {"quality": 90}, 6.0),
])
def test_lossy_formats_round_trip_closely(skin: Image.Image, fmt: str, save_args: dict, tolerance: float) -> None:
    out = load_image(image_bytes(skin, fmt, **save_args))
    assert out.mode == "RGB"
    assert out.size == skin.size
    assert mean_abs_diff(out, skin) < tolerance


def test_heic_round_trip(skin: Image.Image) -> None:
    pytest.importorskip("pillow_heif", reason="pillow-heif is not installed")
    assert images_module.HEIF_SUPPORTED
    try:
        data = image_bytes(skin, "HEIF", quality=95)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # pillow-heif built without an encoder
        pytest.skip(f"pillow-heif cannot encode HEIF here: {exc}")
    assert data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypmsf1")
    out = load_image(data)
    assert out.mode == "RGB"
    assert out.size == skin.size
    assert mean_abs_diff(out, skin) < 6.0


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "path", "str", "file"])
def test_every_source_kind_gives_the_same_pixels(skin: Image.Image, tmp_path: Path, kind: str) -> None:
    data = image_bytes(skin, "PNG")
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    source = {
        "bytes": data, "bytearray": bytearray(data), "path": path, "str": str(path), "file": io.BytesIO(data),
    }[kind]
    assert np.array_equal(pixels(load_image(source)), pixels(skin))


# ---------------------------------------------------------------------------------------- orientation


def test_test_image_is_asymmetric_under_every_orientation() -> None:
    # Guards the orientation tests themselves: each transform must visibly change the image.
    arr = np.asarray(asymmetric_image())
    for n in range(2, 9):
        moved = DISPLAY[n](arr)
        assert moved.shape != arr.shape or not np.array_equal(moved, arr), n
        assert np.array_equal(DISPLAY[n](STORE[n](arr)), arr), n


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_png_is_applied_exactly(orientation: int) -> None:
    original = asymmetric_image()
    stored = stored_with_orientation(original, orientation)
    data = image_bytes(stored, "PNG", exif=exif_with_orientation(orientation))
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == orientation

    out = load_image(data)
    assert out.size == original.size
    assert np.array_equal(pixels(out), pixels(original))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_jpeg(orientation: int) -> None:
    original = asymmetric_image()
    stored = stored_with_orientation(original, orientation)
    data = image_bytes(stored, "JPEG", quality=95, subsampling=0, exif=exif_with_orientation(orientation))
    out = load_image(data)
    assert out.size == original.size
    assert mean_abs_diff(out, original) < 3.0
    if orientation != 1:  # the stored pixels themselves are far from the scene: the tag was applied
        raw = load_image(image_bytes(stored, "JPEG", quality=95, subsampling=0))
        assert raw.size != original.size or mean_abs_diff(raw, original) > 20


# --------------------------------------------------------------------------------------------- modes


def test_rgba_transparent_areas_become_white() -> None:
    arr = np.zeros((40, 60, 4), dtype=np.uint8)
    arr[:, :20] = (255, 0, 0, 0)  # fully transparent red: must not show as red or black
    arr[:, 20:40] = (0, 0, 0, 128)  # half-transparent black over white: mid grey
    arr[:, 40:] = (0, 0, 255, 255)  # opaque blue stays blue
    out = pixels(load_image(image_bytes(Image.fromarray(arr, "RGBA"), "PNG")))
    assert (out[:, :20] == 255).all()
    assert (np.abs(out[:, 20:40] - 127) <= 1).all()
    assert (out[:, 40:] == (0, 0, 255)).all()


def test_la_transparent_areas_become_white() -> None:
    arr = np.zeros((40, 40, 2), dtype=np.uint8)
    arr[:, :20] = (0, 0)  # black, transparent
    arr[:, 20:] = (60, 255)  # dark grey, opaque
    img = Image.fromarray(arr, "LA")
    out = pixels(load_image(image_bytes(img, "PNG")))
    assert (out[:, :20] == 255).all()
    assert (out[:, 20:] == 60).all()


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency_becomes_white(fmt: str) -> None:
    img = Image.new("P", (40, 40), 0)
    img.putpalette([0, 200, 0, 200, 0, 0] + [0, 0, 0] * 254)  # index 0 green (transparent), 1 red
    img.paste(1, (20, 0, 40, 40))
    out = pixels(load_image(image_bytes(img, fmt, transparency=0)))
    assert (out[:, :20] == 255).all()
    assert (out[:, 20:] == (200, 0, 0)).all()


def test_palette_without_transparency_keeps_colours() -> None:
    img = Image.new("P", (40, 40), 1)
    img.putpalette([0, 0, 0, 10, 120, 230] + [0, 0, 0] * 254)
    out = pixels(load_image(image_bytes(img, "PNG")))
    assert (out == (10, 120, 230)).all()


@pytest.mark.parametrize(("fmt", "tolerance"), [("TIFF", 0), ("JPEG", 6)])
def test_cmyk_is_converted_to_the_right_colours(fmt: str, tolerance: int) -> None:
    img = Image.new("CMYK", (48, 48), (255, 0, 0, 0))  # pure cyan
    img.paste((0, 255, 255, 0), (24, 0, 48, 48))  # magenta + yellow = red
    src = Image.open(io.BytesIO(image_bytes(img, fmt, **({"quality": 95} if fmt == "JPEG" else {}))))
    assert src.mode == "CMYK"
    out = pixels(load_image(image_bytes(img, fmt, **({"quality": 95} if fmt == "JPEG" else {}))))
    assert (np.abs(out[4:-4, 4:20] - (0, 255, 255)) <= tolerance).all()
    assert (np.abs(out[4:-4, 28:-4] - (255, 0, 0)) <= tolerance).all()


def test_16_bit_grayscale_png_is_scaled_not_clipped() -> None:
    arr = np.zeros((40, 60), dtype=np.uint16)
    arr[:, 20:40] = 32768
    arr[:, 40:] = 65535
    data = image_bytes(Image.fromarray(arr), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    out = pixels(load_image(data))
    assert (out[:, :20] == 0).all()
    assert (np.abs(out[:, 20:40] - 128) <= 1).all()
    assert (out[:, 40:] == 255).all()
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_32_bit_integer_image_is_scaled() -> None:
    arr = np.zeros((40, 60), dtype=np.int32)
    arr[:, 20:40] = 257 * 100
    arr[:, 40:] = 65535
    data = image_bytes(Image.fromarray(arr, "I"), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "I"
    out = pixels(load_image(data))
    assert (out[:, :20] == 0).all()
    assert (out[:, 20:40] == 100).all()
    assert (out[:, 40:] == 255).all()


def test_32_bit_integer_with_8_bit_values_is_kept() -> None:
    arr = np.tile(np.arange(0, 256, 4, dtype=np.int32), (40, 1))
    out = pixels(to_rgb(Image.fromarray(arr, "I")))
    assert np.array_equal(out[..., 0], arr)


def test_float_image_in_unit_range_is_scaled() -> None:
    arr = np.zeros((40, 60), dtype=np.float32)
    arr[:, 20:40] = 0.25
    arr[:, 40:] = 1.0
    data = image_bytes(Image.fromarray(arr, "F"), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "F"
    out = pixels(load_image(data))
    assert (out[:, :20] == 0).all()
    assert (out[:, 20:40] == 64).all()
    assert (out[:, 40:] == 255).all()


def test_grayscale_gives_equal_channels() -> None:
    arr = np.tile(np.arange(0, 240, 4, dtype=np.uint8), (40, 1))
    out = pixels(load_image(image_bytes(Image.fromarray(arr, "L"), "PNG")))
    assert out.shape == (40, 60, 3)
    for c in range(3):
        assert np.array_equal(out[..., c], arr)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF"])
def test_one_bit_image(fmt: str) -> None:
    img = Image.new("1", (40, 40), 0)
    img.paste(1, (0, 0, 20, 40))
    out = pixels(load_image(image_bytes(img, fmt)))
    assert (out[:, :20] == 255).all()
    assert (out[:, 20:] == 0).all()


def test_animated_gif_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (48, 48), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    out = pixels(load_image(data))
    assert (out == (255, 0, 0)).all()


def test_animated_webp_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (48, 48), colour) for colour in ((0, 0, 255), (255, 0, 0))]
    data = image_bytes(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True, duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert (pixels(load_image(data)) == (0, 0, 255)).all()


# ----------------------------------------------------------------------------------------- big images


def test_big_jpeg_is_downscaled_with_aspect_preserved() -> None:
    img = Image.new("RGB", (6000, 4000), (220, 30, 30))
    img.paste((30, 30, 220), (3000, 0, 6000, 4000))  # left red, right blue: shows it is not mirrored
    data = image_bytes(img, "JPEG", quality=85)
    out = load_image(data)
    assert out.mode == "RGB"
    assert max(out.size) == MAX_SIDE
    assert out.size == (1024, 683)  # 6000:4000 = 1024:682.7
    arr = pixels(out)
    assert (np.abs(arr[:, :500] - (220, 30, 30)) < 12).all()
    assert (np.abs(arr[:, 530:] - (30, 30, 220)) < 12).all()


def test_big_rotated_jpeg_is_downscaled_and_upright() -> None:
    # A phone photo held upright: stored landscape with orientation 6. Draft decoding and the EXIF
    # rotation must combine: the result is portrait.
    scene = Image.new("RGB", (3000, 4000), (220, 30, 30))
    scene.paste((30, 30, 220), (0, 2000, 3000, 4000))  # top red, bottom blue
    stored = scene.transpose(Image.Transpose.ROTATE_90)
    out = load_image(image_bytes(stored, "JPEG", quality=85, exif=exif_with_orientation(6)))
    assert out.size == (768, 1024)
    arr = pixels(out)
    assert (np.abs(arr[:480] - (220, 30, 30)) < 12).all()
    assert (np.abs(arr[540:] - (30, 30, 220)) < 12).all()


def test_big_png_is_downscaled_and_max_side_none_keeps_size() -> None:
    img = Image.new("RGB", (2000, 1500), (200, 150, 120))
    img.paste((90, 60, 50), (0, 0, 1000, 750))
    data = image_bytes(img, "PNG", compress_level=1)
    assert load_image(data).size == (1024, 768)
    assert load_image(data, max_side=None).size == (2000, 1500)
    assert load_image(data, max_side=300).size == (300, 225)


# ----------------------------------------------------------------------------------------- refusals


def test_zero_bytes_is_refused() -> None:
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_empty_file_on_disk_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(path)


def test_text_renamed_to_jpg_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("Patient notes: itchy rash on the left forearm since Monday.\n" * 20)
    with pytest.raises(ImageError, match="not an image DermLens can read"):
        load_image(path)


def test_truncated_jpeg_is_refused() -> None:
    data = image_bytes(synthetic_skin_image(seed=2, size=(400, 300)), "JPEG", quality=90)
    assert load_image(data).size == (400, 300)  # the whole file is fine
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_truncated_png_is_refused() -> None:
    data = image_bytes(synthetic_skin_image(seed=2, size=(400, 300)), "PNG")
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


class _LoadSpy:
    """Counts decodes (``load``) while a test runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        for cls in (Image.Image, ImageFile.ImageFile):
            original = cls.load

            def spy(img: Image.Image, _original: Callable = original) -> object:
                self.calls += 1
                return _original(img)

            monkeypatch.setattr(cls, "load", spy)


@pytest.mark.parametrize("side", [50_000, 8_000])
def test_forged_png_header_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch, side: int) -> None:
    # 50000^2 trips Pillow's own bomb check inside Image.open; 8000^2 = 64 MP passes Pillow's limit
    # (89 MP) and must be caught by DermLens's stricter one. Neither may reach a decoder.
    data = forged_png(side, side)
    assert len(data) < 200
    spy = _LoadSpy(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(ImageError, match="megapixels"):
        load_image(data)
    assert time.perf_counter() - start < 1.0
    assert spy.calls == 0


def test_forged_header_message_names_the_size(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImageError, match="8000x8000 pixels") as info:
        load_image(forged_png(8000, 8000))
    assert f"{MAX_PIXELS / 1e6:.0f} megapixels" in str(info.value)


def test_real_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A valid 8000x8000 PNG of one grey: 64 MP (above MAX_PIXELS) in a file of a few tens of KB.
    data = image_bytes(Image.new("L", (8000, 8000), 128), "PNG", optimize=False, compress_level=9)
    assert len(data) < 200_000
    assert MAX_PIXELS < 8000 * 8000
    Image.open(io.BytesIO(data)).verify()  # a well-formed PNG, not a forged header
    spy = _LoadSpy(monkeypatch)
    with pytest.raises(ImageError, match="8000x8000 pixels"):
        load_image(data)
    assert spy.calls == 0


def test_max_pixels_parameter_is_honoured() -> None:
    data = image_bytes(Image.new("RGB", (200, 100), (1, 2, 3)), "PNG")
    assert load_image(data, max_pixels=20_000).size == (200, 100)
    with pytest.raises(ImageError, match="200x100 pixels"):
        load_image(data, max_pixels=19_999)


@pytest.mark.parametrize("size", [(1, 1), (10, 10), (400, 10), (MIN_SIDE - 1, 500)])
def test_too_small_is_refused(size: tuple[int, int]) -> None:
    data = image_bytes(Image.new("RGB", size, (120, 80, 60)), "PNG")
    with pytest.raises(ImageError, match=f"only {size[0]}x{size[1]} pixels"):
        load_image(data)


def test_smallest_accepted_side() -> None:
    assert load_image(image_bytes(Image.new("RGB", (MIN_SIDE, MIN_SIDE)), "PNG")).size == (MIN_SIDE, MIN_SIDE)


@pytest.fixture(scope="module")
def thirty_mb() -> bytes:
    return np.random.default_rng(0).integers(0, 256, 30 * 1024 * 1024, dtype=np.uint8).tobytes()


def test_upload_over_byte_limit_is_refused(thirty_mb: bytes) -> None:
    assert len(thirty_mb) > MAX_BYTES
    with pytest.raises(ImageError, match="limit is"):
        load_image(thirty_mb)


def test_file_over_byte_limit_is_refused_without_reading_it(
    thirty_mb: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.jpg"
    path.write_bytes(thirty_mb)

    def no_read(self: Path) -> bytes:
        raise AssertionError("the file was read although its size is over the limit")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    with pytest.raises(ImageError, match="limit is"):
        load_image(path)


def test_file_object_over_byte_limit_is_refused(thirty_mb: bytes) -> None:
    with pytest.raises(ImageError, match="limit is"):
        load_image(io.BytesIO(thirty_mb))


def test_small_max_bytes_parameter(skin: Image.Image) -> None:
    data = image_bytes(skin, "PNG")
    assert load_image(data, max_bytes=len(data)).size == skin.size
    with pytest.raises(ImageError, match="limit is"):
        load_image(data, max_bytes=len(data) - 1)
    with pytest.raises(ImageError, match="limit is"):
        load_image(io.BytesIO(data), max_bytes=len(data) - 1)


def test_nonexistent_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="No image file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="No image file"):
        load_image(str(tmp_path))  # a folder is not an image file


@pytest.mark.parametrize("name", [
    "x;rm -rf $(touch PWNED).png",
    "-rf `touch PWNED` && .png",
    "naïve ümlaut 写真 .png",
    "line\nbreak.png",
    "' OR 1=1 --.png",
])
def test_odd_file_names_are_only_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    skin = synthetic_skin_image(seed=4, size=(64, 48))
    data = image_bytes(skin, "PNG")
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / ".." / name  # a "../" component that stays inside tmp_path
    path.write_bytes(data)
    assert np.array_equal(pixels(load_image(str(path))), pixels(skin))
    assert np.array_equal(pixels(load_image(path)), pixels(skin))
    assert not any(p.name == "PWNED" for p in tmp_path.rglob("*"))


def test_bytes_that_spell_a_file_name_are_content_not_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An upload's bytes are never treated as a path, even when they name an existing image file.
    monkeypatch.chdir(tmp_path)
    Path("photo.png").write_bytes(image_bytes(synthetic_skin_image(size=(64, 48)), "PNG"))
    assert load_image("photo.png").size == (64, 48)
    with pytest.raises(ImageError, match="not an image"):
        load_image(b"photo.png")
    with pytest.raises(ImageError, match="not an image"):
        load_image(b"../x;rm -rf.png")


@pytest.mark.parametrize(("source", "type_name"), [(12345, "int"), (None, "NoneType"), ([1, 2, 3], "list"),
                                                     (np.zeros((40, 40, 3), np.uint8), "ndarray")])
def test_wrong_object_type_is_refused(source: object, type_name: str) -> None:
    with pytest.raises(ImageError, match=f"Cannot read an image from a {type_name}"):
        load_image(source)  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # PNG signature, no chunks
    b"\xff\xd8\xff\xe0" + b"\x00" * 40,  # JPEG start, garbage
    b"GIF89a" + b"\x00" * 10,
])
def test_damaged_headers_are_refused_with_image_error(data: bytes) -> None:
    with pytest.raises(ImageError):
        load_image(data)


def test_refusal_messages_are_written_for_a_person() -> None:
    cases = [b"", b"hello", forged_png(8000, 8000), image_bytes(Image.new("RGB", (5, 5)), "PNG")]
    for data in cases:
        with pytest.raises(ImageError) as info:
            load_image(data)
        message = str(info.value)
        assert message[0].isupper() and message.rstrip().endswith("."), message
        assert "Traceback" not in message and "PIL" not in message, message


def test_rgb_for_reading_copies_only_what_is_not_rgb() -> None:
    from dermlib.images import rgb_for_reading

    rgb = Image.new("RGB", (40, 30), (10, 20, 30))
    assert rgb_for_reading(rgb) is rgb  # read-only callers skip the copy that convert() makes
    grey = Image.new("L", (40, 30), 77)
    converted = rgb_for_reading(grey)
    assert converted.mode == "RGB" and converted.getpixel((0, 0)) == (77, 77, 77) and grey.mode == "L"
