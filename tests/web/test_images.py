"""Uploaded images are checked and written anew by Pillow: what is refused, what is kept."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from PIL import Image, ImageFile

from newsletter.web import images
from newsletter.web.images import ImageRefused, clean

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg_with_gps(size: tuple[int, int] = (1600, 1000), orientation: int = 1) -> bytes:
    """A JPEG photo as a phone writes it: camera, GPS position, orientation in EXIF."""
    exif = Image.Exif()
    exif[0x010F] = "Telefonas"  # camera maker
    exif[ORIENTATION] = orientation
    exif[GPS_IFD] = {1: "N", 2: (54.0, 41.0, 12.5), 3: "E", 4: (25.0, 16.0, 48.0)}
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def encoded(image: Image.Image, kind: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG that declares ``width`` × ``height`` with a tiny compressed body: a bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\0" * 4096, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def reason(data: bytes, name: str, declared: str = "") -> str:
    with pytest.raises(ImageRefused) as refused:
        clean(data, name, declared)
    return refused.value.key


def test_a_jpeg_with_gps_comes_back_without_exif_upright_and_at_most_1200_wide() -> None:
    original = jpeg_with_gps((1600, 1300), orientation=6)  # "turn 90° to show"
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)
    kept = clean(original, "IMG_0001.JPG", "image/jpeg")
    reread = Image.open(io.BytesIO(kept.content))
    assert dict(reread.getexif()) == {}
    assert b"Exif" not in kept.content and b"Telefonas" not in kept.content
    assert reread.size == (kept.width, kept.height) == (1200, 1477)  # turned, then shrunk
    assert (kept.ext, kept.content_type, reread.format) == ("jpg", "image/jpeg", "JPEG")


def test_the_name_is_the_sha256_of_the_bytes_kept() -> None:
    kept = clean(encoded(Image.new("RGB", (40, 30), "red"), "PNG"), "a.png")
    import hashlib

    assert kept.sha256 == hashlib.sha256(kept.content).hexdigest()
    assert kept.name == f"{kept.sha256}.png"
    assert (kept.width, kept.height) == (40, 30)


def test_a_png_bomb_is_refused_from_its_header_before_any_pixel_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bomb = png_header_only(20_000, 20_000)
    assert len(bomb) < 1024

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert reason(bomb, "plakatas.png") == "media.bomb"


def test_an_animated_gif_with_too_many_frames_is_refused() -> None:
    frames = [Image.new("L", (4, 4), index % 200) for index in range(images.MAX_FRAMES + 1)]
    gif = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert reason(gif, "a.gif") == "media.bomb"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
            b"<script>alert(1)</script></svg>",
            "logo.svg",
        ),
        (b'<svg onload="alert(1)"/>', "logo.png"),
        (b"\xef\xbb\xbf  <!doctype html><script>alert(1)</script>", "photo.jpg"),
    ],
)
def test_svg_and_html_are_refused(data: bytes, name: str) -> None:
    assert reason(data, name) == "media.markup"


def test_a_gif_renamed_png_and_a_declared_type_that_lies_are_refused() -> None:
    gif = encoded(Image.new("P", (8, 8)), "GIF")
    assert reason(gif, "nuotrauka.png") == "media.mismatch"
    png = encoded(Image.new("RGB", (8, 8)), "PNG")
    assert reason(png, "nuotrauka.png", "image/jpeg") == "media.mismatch"
    assert reason(png, "nuotrauka", "image/png") == "media.bad_name"


def test_polyglots_are_refused() -> None:
    photo = jpeg_with_gps((64, 64))
    assert reason(photo + b"<script>alert(1)</script>", "a.jpg") == "media.polyglot"
    assert reason(photo + b"PK\x03\x04" + os.urandom(64), "a.jpg") == "media.polyglot"
    commented = encoded(Image.new("P", (8, 8)), "GIF", comment=b"<html><body>hi</body></html>")
    assert reason(commented, "a.gif") == "media.polyglot"


def test_not_an_image_damaged_and_too_large() -> None:
    assert reason(b"%PDF-1.7\n" + os.urandom(200), "a.png") == "media.not_image"
    assert reason(encoded(Image.new("RGB", (8, 8)), "BMP"), "a.png") == "media.not_image"
    assert reason(jpeg_with_gps((64, 64))[:300], "a.jpg") == "media.broken"
    assert reason(b"\0" * (images.MAX_INPUT_BYTES + 1), "a.png") == "media.too_large"


def test_a_result_over_the_output_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_OUTPUT_BYTES", 64 * 1024)  # a small limit, a small image
    noise = Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3))
    assert reason(encoded(noise, "PNG"), "triuksmas.png") == "media.output_large"


def test_webp_is_kept_as_png_or_jpeg_and_an_animated_gif_stays_animated() -> None:
    clear = clean(encoded(Image.new("RGBA", (20, 20), (0, 0, 0, 0)), "WEBP"), "a.webp")
    photo = clean(encoded(Image.new("RGB", (20, 20), "blue"), "WEBP"), "b.webp")
    assert (clear.ext, photo.ext) == ("png", "jpg")
    pictures = [Image.new("RGB", (30, 20), colour) for colour in ("red", "blue")]
    mpo = encoded(pictures[0], "MPO", save_all=True, append_images=pictures[1:])
    assert clean(mpo, "IMG_0002.JPG", "image/jpeg").ext == "jpg"  # a phone's JPEG with two pictures
    frames = [Image.new("RGB", (1300, 50), (index * 40, 0, 0)) for index in range(4)]
    gif = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80)
    kept = clean(gif, "a.gif")
    reread = Image.open(io.BytesIO(kept.content))
    assert (reread.n_frames, reread.size) == (4, (1200, 46))
